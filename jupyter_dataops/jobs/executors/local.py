"""The local executor: a bounded pool of warm runner processes on this machine.

Each runner (``jupyter_dataops.jobs.runner``) imports papermill and starts its kernel before
any run needs it; a run takes a ready runner, so kernel start-up is off its critical path, and
a new runner starts in the background. A runner serves exactly one run, then exits: every
run gets a fresh kernel in a fresh process. Timeouts and cancellation kill the runner's
process group (the kernel included).

This dispatch loop is the only dispatcher: a run whose ``executor`` is ``"dask"`` is handed
to :class:`~.dask.DaskBackend` (a ``distributed`` cluster) instead of a warm runner.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..forkserver import ForkServer, SandboxForkServer
from ..service import OUTPUT_FILES, JobService, RunSpec

if TYPE_CHECKING:
    from .dask import DaskBackend

log = logging.getLogger(__name__)
KILL_GRACE_S = 3.0
# A runner that reported the end of its run shuts its kernel down (jupyter_client gives a
# kernel 5 s before killing it) and exits; past this, what is left is killed.
EXIT_GRACE_S = 10.0
START_ATTEMPTS = 3  # runners tried for one run before it fails for want of a kernel
TRACKING_START_DELAY_S = 0.5  # a run's MLflow parameters, this long after its start
FORK_SERVER_RESTARTS = 3


class KernelStartFailed(RuntimeError):
    pass


class Runner:
    """A runner started as its own interpreter (``python -m jupyter_dataops.jobs.runner``):
    the way for kernels that cannot be forked (another language, another environment)."""

    def __init__(self, kernel_name: str, cwd: str) -> None:
        self.kernel_name = kernel_name
        self.cwd = cwd
        self.pid: int | None = None
        self.kernel_pid: int | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.proc: asyncio.subprocess.Process | None = None
        self.error: str | None = None  # why it did not start
        self.leftovers: list[str] = []  # files a killed runner cannot remove itself

    async def _open(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jupyter_dataops.jobs.runner",
            self.kernel_name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=self.cwd,
            # The server's environment as Python sees it, as forked runners get it: not what C
            # code set behind os.environ's back (readline exports LINES and COLUMNS).
            env=dict(os.environ),
            start_new_session=True,  # its own process group: one kill takes the kernel too
        )
        self.pid, self.reader, self.writer = self.proc.pid, self.proc.stdout, self.proc.stdin

    async def start(self) -> None:
        try:
            await self._open()
            line = await self.read()
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        else:
            if line is not None and line.get("event") == "ready":
                self.kernel_pid = line.get("kernel_pid")
                self.leftovers = [str(f) for f in line.get("leftovers") or [] if f]
                self.ready.set_result(True)
                return
            self.error = line.get("error") if line else None
        log.error("DataOps: a %r runner failed to start: %s", self.kernel_name, self.error)
        self.ready.set_result(False)

    async def read(self) -> dict[str, Any] | None:
        assert self.reader is not None
        while True:
            raw = await self.reader.readline()
            if not raw:
                return None
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                continue  # stray output; the protocol lines are JSON

    async def send(self, job: dict[str, Any]) -> None:
        assert self.writer is not None
        self.writer.write((json.dumps(job) + "\n").encode())
        await self.writer.drain()

    def exit_code(self) -> int | None:
        return self.proc.returncode if self.proc else None

    def _signal(self, sig: int) -> bool:
        """Signal the runner's process group and its kernel's (a kernel has a session of its
        own, as jupyter_client starts them: its children go with it); False when nothing is
        left."""
        alive = False
        for pid in (self.pid, self.kernel_pid):
            if pid:
                try:
                    # Only a group this process leads: never the group of a process that
                    # took over the pid of one already gone.
                    if os.getpgid(pid) == pid:
                        os.killpg(pid, sig)
                    else:
                        os.kill(pid, sig)
                    alive = True
                except (ProcessLookupError, PermissionError):
                    pass
        return alive

    async def _wait(self, timeout: float) -> bool:
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def release(self) -> None:
        """Let a runner that reported the end of its run exit by itself; kill what is left."""
        if self.pid is not None and self.exit_code() is None and await self._wait(EXIT_GRACE_S):
            self._clean()
            return
        await self.kill()

    async def kill(self) -> None:
        if self.pid is None or self.exit_code() is not None:
            self._clean()
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self._signal(sig) or await self._wait(KILL_GRACE_S):
                break
        self._clean()

    def _clean(self) -> None:
        for path in self.leftovers:  # gone already when the runner ended by itself
            try:
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
            except OSError:
                pass
        self.leftovers = []


class ForkedRunner(Runner):
    """A runner forked by the :class:`~..forkserver.ForkServer`: everything is imported
    already, and its kernel is forked from it (a fresh one per run all the same)."""

    def __init__(self, kernel_name: str, cwd: str, forks: ForkServer) -> None:
        super().__init__(kernel_name, cwd)
        self.forks = forks
        self._gone = False

    async def _open(self) -> None:
        self.pid, sock = await asyncio.to_thread(self.forks.spawn, self.kernel_name)
        self.reader, self.writer = await asyncio.open_unix_connection(sock=sock)

    def exit_code(self) -> int | None:
        return -1 if self._gone else None

    async def _wait(self, timeout: float) -> bool:
        # Not our child (the fork server reaps it): poll until the pid is gone.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid or 0, 0)
            except ProcessLookupError:
                self._gone = True
                if self.writer is not None:
                    self.writer.close()
                return True
            except PermissionError:
                pass  # alive, and another OS user's (a sandboxed runner)
            await asyncio.sleep(0.02)
        return False


class SandboxedRunner(ForkedRunner):
    """A runner forked by a fork server running as another OS user (the service's sandbox,
    see :mod:`jupyter_dataops.team.sandbox`). This process may not signal it nor read its
    files: the fork server signals and cleans up, and the run ships its outputs back."""

    def __init__(
        self,
        kernel_name: str,
        cwd: str,
        os_user: str,
        forks_for: Callable[[str], Awaitable[SandboxForkServer]],
    ) -> None:
        Runner.__init__(self, kernel_name, cwd)
        self.os_user = os_user
        self._forks_for = forks_for
        self.sandbox: SandboxForkServer | None = None
        self._gone = False

    async def _open(self) -> None:
        self.sandbox = await self._forks_for(self.os_user)
        self.pid, sock = await asyncio.to_thread(self.sandbox.spawn, self.kernel_name)
        self.reader, self.writer = await asyncio.open_unix_connection(sock=sock)

    async def kill(self) -> None:
        box = self.sandbox
        if box is not None and self.pid is not None and not self._gone:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    alive = await asyncio.to_thread(
                        box.signal, [self.pid, self.kernel_pid or 0], sig
                    )
                except RuntimeError:
                    break  # the fork server is gone, and its runners with their sockets
                if not alive or await self._wait(KILL_GRACE_S):
                    break
        if box is not None and self.leftovers:
            try:
                await asyncio.to_thread(box.remove, self.leftovers)
            except RuntimeError:
                pass
        self.leftovers = []


@dataclass(frozen=True)
class Sandbox:
    """Where job kernels run in the team's service: as which OS user, started by whom."""

    launcher: Any  # jupyter_dataops.team.sandbox.Launcher
    run_as: str = "{owner}"  # a template: the run's owner's OS user, or a fixed name
    group_run_as: str = "dataops-jobs"

    def user_for(self, owner: str) -> str:
        if owner.startswith("group:"):
            return self.group_run_as
        return self.run_as.replace("{owner}", owner)


class LocalExecutor:
    """Dispatches this server's queued runs onto warm runners."""

    recover_every_s = 30.0  # looks for runs of dispatchers that died (its own at start)

    def __init__(
        self,
        service: JobService,
        run_blocking: Callable[..., Awaitable[Any]],
        server_url: str,
        workers: int = 2,
        warm: int = 2,
        default_kernel: str = "python3",
        dask_scheduler_address: str = "",
        fork_kernels: bool = True,
        kernel_preload: tuple[str, ...] = (),
        kind: str = "server",
        sandbox: Sandbox | None = None,
        refuse_local: str = "",
    ) -> None:
        self.service = service
        self.kind = kind  # the dispatcher identity it serves (server, scheduler, run)
        self.run_blocking = run_blocking  # runs store work off the event loop
        self.server_url = server_url
        self.workers = workers
        self.warm = warm
        self.default_kernel = default_kernel
        self._pool: list[Runner] = []
        self._active: dict[str, Runner] = {}
        self._exiting: set[Runner] = set()  # runs over, runners shutting their kernel down
        self.dask_scheduler_address = dask_scheduler_address
        self._dask: DaskBackend | None = None
        self._remote: dict[str, bool] = {}  # runs executing on the Dask cluster
        self._running_jobs: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.fork_kernels = fork_kernels
        self.kernel_preload = kernel_preload
        self._forks: ForkServer | None = None
        self._forkable: dict[str, bool] = {}
        self._forks_lost = 0
        self._recovered_at = 0.0
        # The service's sandbox: runners as their runs' OS users, one fork server per user.
        self.sandbox = sandbox
        self.refuse_local = refuse_local  # why local runs may not run here, if they may not
        self._sandboxes: dict[str, SandboxForkServer] = {}
        self._sandbox_lock = asyncio.Lock()

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self.service.become_dispatcher(self.kind)
        self._recovered_at = time.monotonic()
        retries = await self.run_blocking(self.service.recover)
        if retries:
            log.warning("DataOps: %d lost runs will be retried", len(retries))
        if self.refuse_local:
            pass  # no local runner at all: Dask runs only
        elif self.sandbox is not None:
            # No runner of this process's own user: each run's comes from its user's fork
            # server, warmed once that user has run something.
            await asyncio.to_thread(self._can_fork, self.default_kernel)
        elif self.fork_kernels and await asyncio.to_thread(self._can_fork, self.default_kernel):
            self._forks = ForkServer(str(self.service.root), self.kernel_preload)
        if self.sandbox is None and not self.refuse_local:
            for _ in range(self.warm):
                self._spawn(self.default_kernel)
        self._task = asyncio.create_task(self._dispatch_loop())

    async def _sandbox_for(self, os_user: str) -> SandboxForkServer:
        """The fork server of ``os_user`` (started by the root launcher on first use)."""
        assert self.sandbox is not None
        async with self._sandbox_lock:
            box = self._sandboxes.get(os_user)
            if box is None or box.dead:
                pid, sock = await asyncio.to_thread(
                    self.sandbox.launcher.fork_server, os_user, self.kernel_preload
                )
                box = self._sandboxes[os_user] = SandboxForkServer(os_user, pid, sock)
            return box

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
        for runner in [*self._pool, *self._active.values(), *self._exiting]:
            await runner.kill()
        for task in list(self._tasks):
            task.cancel()
        if self._dask is not None:
            await self._dask.close()
        if self._forks is not None:
            await asyncio.to_thread(self._forks.close)
        for box in self._sandboxes.values():
            box.close()
        self.service.stop_dispatching()  # last: its runs are over, others may recover them

    def _can_fork(self, kernel_name: str) -> bool:
        if kernel_name not in self._forkable:
            from ..forkserver import forkable

            self._forkable[kernel_name] = forkable(kernel_name)
        return self._forkable[kernel_name]

    def wake(self) -> None:
        self._wake.set()

    # pool ----------------------------------------------------------------------------------------
    def _spawn(self, kernel_name: str, os_user: str | None = None) -> Runner:
        cwd = str(self.service.root)
        if self.refuse_local:
            raise KernelStartFailed(self.refuse_local)
        if self.sandbox is not None:
            if not self._forkable.get(kernel_name):
                raise KernelStartFailed(
                    f"kernel {kernel_name!r} cannot be forked: in the team's service, job "
                    "kernels are ipykernel kernelspecs of the service's own Python"
                )
            assert os_user is not None
            sandboxed = SandboxedRunner(kernel_name, cwd, os_user, self._sandbox_for)
            self._pool.append(sandboxed)
            self._track(sandboxed.start())
            return sandboxed
        if self._forks is not None and self._forks.proc.poll() is not None:
            self._forks_lost += 1
            if self._forks_lost <= FORK_SERVER_RESTARTS:
                log.warning("DataOps: the kernel fork server exited; restarting it")
                self._forks = ForkServer(cwd, self.kernel_preload)
            else:
                log.error("DataOps: the kernel fork server keeps exiting; runners now start "
                          "their own interpreter")  # fmt: skip
                self._forks = None
        if self._forks is not None and self._forkable.get(kernel_name):
            runner: Runner = ForkedRunner(kernel_name, cwd, self._forks)
        else:
            runner = Runner(kernel_name, cwd)
        self._pool.append(runner)
        self._track(runner.start())
        return runner

    async def _trim_pool(self) -> None:
        """The sandbox keeps a warm runner for each user who ran something lately, up to a
        bound: the oldest go first."""
        if self.sandbox is None:
            return
        while len(self._pool) > max(2 * self.warm, 2):
            self._track(self._pool.pop(0).kill())

    async def _tracking_started(self, run_id: str) -> None:
        """The MLflow parameters and lineage START of a run that has started, a moment later:
        a short run never pays for them beside its kernel (its end records them at once)."""
        await asyncio.sleep(TRACKING_START_DELAY_S)
        if run_id in self._active or run_id in self._remote:
            await self.run_blocking(self.service.tracking_started, run_id)

    def _track(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _take(self, kernel_name: str, os_user: str | None = None) -> Runner:
        if (self._forks is not None or self.sandbox) and kernel_name not in self._forkable:
            await asyncio.to_thread(self._can_fork, kernel_name)
        error = None
        for _attempt in range(START_ATTEMPTS):
            candidates = [
                r for r in self._pool
                if r.kernel_name == kernel_name and getattr(r, "os_user", None) == os_user
            ]  # fmt: skip
            ready = [r for r in candidates if r.ready.done() and r.ready.result()]
            runner = ready[0] if ready else (candidates[0] if candidates else None)
            if runner is None:
                runner = self._spawn(kernel_name, os_user)
            self._pool.remove(runner)
            if kernel_name == self.default_kernel:
                self._spawn(kernel_name, os_user)  # refill in the background
                await self._trim_pool()
            if await runner.ready:
                return runner
            await runner.kill()  # it failed to start; try another
            error = runner.error
        raise KernelStartFailed(
            f"no kernel {kernel_name!r} could be started ({START_ATTEMPTS} attempts): "
            f"{error or 'the runner exited'}"
        )

    # dispatch ------------------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            try:
                await self._dispatch_once()
                if time.monotonic() - self._recovered_at >= self.recover_every_s:
                    # Runs of dispatchers that died since (a killed CLI run) are lost.
                    self._recovered_at = time.monotonic()
                    await self.run_blocking(self.service.recover, False)
            except Exception:
                log.exception("DataOps: dispatch failed")
            nxt = await self.run_blocking(self.service.next_wakeup)
            timeout = 5.0
            if nxt is not None:
                timeout = max(
                    0.05, min(timeout, (nxt - datetime.now(timezone.utc)).total_seconds())
                )
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _executors(self, run_ids: list[str]) -> dict[str, str]:
        from sqlalchemy import select

        from ...store import tables as t

        with self.service.store.session() as s:
            rows = s.execute(select(t.Run.id, t.Run.executor).where(t.Run.id.in_(run_ids)))
            return {r[0]: r[1] for r in rows}

    def _dask_backend(self) -> DaskBackend:
        if self._dask is None:
            from .dask import DaskBackend

            self._dask = DaskBackend(self.dask_scheduler_address)
        return self._dask

    async def _dispatch_once(self) -> None:
        queued = await self.run_blocking(self.service.queued)
        if not queued:
            return
        executors = await self.run_blocking(self._executors, [q[0] for q in queued])
        for run_id, job_id, concurrency in queued:
            # Local runs are bounded by the runner pool; the cluster queues Dask runs itself.
            remote = executors.get(run_id) == "dask"
            if not remote and len(self._active) >= self.workers:
                continue
            if job_id and self._running_jobs.get(job_id, 0) >= concurrency:
                continue
            spec = await self.run_blocking(self.service.claim, run_id, self.server_url)
            if spec is None:
                continue  # another dispatcher took it, or it was cancelled
            if job_id:
                self._running_jobs[job_id] = self._running_jobs.get(job_id, 0) + 1
            if remote:
                self._remote[run_id] = True
            else:
                self._active[run_id] = Runner(spec.kernel_name, str(self.service.root))
            self._track(self._execute(spec, job_id, remote))

    async def _execute(self, spec: RunSpec, job_id: str | None, remote: bool = False) -> None:
        status, error, outputs = "failed", None, None
        runner: Runner | None = None
        ended = False  # the runner reported the end itself: it exits on its own
        try:
            if remote:

                async def progress(data: dict[str, Any]) -> None:
                    await self.run_blocking(self.service.progress, spec.run_id, data)

                self._track(self._tracking_started(spec.run_id))
                status, error, outputs = await self._dask_backend().run(spec, progress)
            else:
                os_user = self.sandbox.user_for(spec.owner) if self.sandbox else None
                runner = await self._take(spec.kernel_name, os_user)
                if self._active.get(spec.run_id) is None:  # cancelled while waiting for one
                    await runner.kill()
                    return
                self._active[spec.run_id] = runner
                job = spec.job
                if isinstance(runner, SandboxedRunner):
                    # It cannot read the service's files: the input goes inline.
                    data = await asyncio.to_thread(Path(job["input_path"]).read_bytes)
                    job = {**job, "ship": True, "input_b64": base64.b64encode(data).decode()}
                await runner.send(job)
                # Its MLflow parameters are recorded while the kernel works, not before.
                self._track(self._tracking_started(spec.run_id))
                status, error, outputs, ended = await asyncio.wait_for(
                    self._follow(spec.run_id, runner), spec.timeout_s
                )
        except asyncio.TimeoutError:
            status = "timed_out"
            error = {
                "reason": "timeout",
                "message": f"the run exceeded its timeout of {spec.timeout_s:g} s and was killed",
            }
        except asyncio.CancelledError:
            status = "cancelled"
            error = {"reason": "cancelled", "message": "cancelled"}
        except KernelStartFailed as e:
            error = {"reason": "kernel_start", "message": str(e)}
        except Exception as e:
            log.exception("DataOps: run %s failed in the executor", spec.run_id)
            error = {"reason": "executor", "message": f"{type(e).__name__}: {e}"}
        finally:
            if runner is not None and not ended:
                await runner.kill()  # before the record says so, the kernel is dead
            cancelled = (self._remote if remote else self._active).pop(spec.run_id, None) is None
            if job_id:
                self._running_jobs[job_id] -= 1
            if cancelled:
                status = "cancelled"
                error = {"reason": "cancelled", "message": "cancelled while running"}
            retry = await self.run_blocking(
                self.service.finish, spec.run_id, status, error, outputs
            )
            if retry:
                log.info("DataOps: run %s %s; retry %s queued", spec.run_id, status, retry)
            self.wake()
            if runner is not None and ended:
                self._exiting.add(runner)
                try:
                    await runner.release()  # it is exiting by itself
                finally:
                    self._exiting.discard(runner)

    async def _follow(
        self, run_id: str, runner: Runner
    ) -> tuple[str, dict[str, Any] | None, dict[str, str] | None, bool]:
        """Follow a run's events: (status, error, outputs, whether the runner ended it)."""
        shipped: set[str] = set()
        while True:
            msg = await runner.read()
            if msg is None:
                code = runner.exit_code()
                if run_id not in self._active:
                    return "cancelled", {"reason": "cancelled", "message": "cancelled"}, None, False
                return (
                    "failed",
                    {
                        "reason": "runner_died",
                        "message": f"the run's process ended unexpectedly "
                        f"(exit code {code}); the kernel may have crashed",
                    },
                    None,
                    False,
                )
            if msg["event"] == "progress":
                data = {k: msg[k] for k in ("cell", "of", "index", "source", "elapsed")}
                await self.run_blocking(self.service.progress, run_id, data)
            elif msg["event"] in ("log", "file"):  # a sandboxed run ships its files
                await asyncio.to_thread(self._receive, run_id, msg, shipped)
            elif msg["event"] == "done":
                return msg["status"], msg.get("error"), msg.get("outputs"), True

    def _receive(self, run_id: str, msg: dict[str, Any], shipped: set[str]) -> None:
        """Write what a sandboxed run sent into the run's directory (blocking)."""
        run_dir = self.service.runs_dir / run_id
        if msg["event"] == "log":
            with open(run_dir / OUTPUT_FILES["log"], "a", encoding="utf-8") as f:
                f.write(str(msg.get("text", "")))
            return
        name = str(msg.get("name"))
        if name == "spool":  # its tracking spool, for the server to send on
            file = os.path.basename(str(msg.get("file", "")))
            if not file.endswith((".jsonl", ".sent")) or file.startswith("."):
                return
            (run_dir / "spool").mkdir(exist_ok=True)
            target, key = run_dir / "spool" / file, f"spool/{file}"
        elif name in ("notebook", "html", "pdf"):
            target, key = run_dir / OUTPUT_FILES[name], name
        else:
            return
        mode = "ab" if key in shipped else "wb"
        shipped.add(key)
        with open(target, mode) as f:
            f.write(base64.b64decode(str(msg.get("data", ""))))

    async def cancel(self, run_id: str) -> bool:
        """Kill a running run; False when it is not running here."""
        if self._remote.pop(run_id, None):
            return await self._dask_backend().cancel(run_id)
        runner = self._active.pop(run_id, None)
        if runner is None:
            return False
        await runner.kill()
        return True
