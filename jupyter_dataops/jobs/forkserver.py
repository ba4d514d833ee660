"""Runners forked from a pre-imported parent, each forking its own fresh kernel.

Starting a runner the plain way (:mod:`.runner` as a new interpreter) costs a Python start,
the imports of papermill, nbclient, jupyter_client, ipykernel and IPython, and then the
kernel's own interpreter start and the same imports again: about a second of CPU per run,
which is what bounds a burst of runs on a small machine. Here one long-lived *fork server*
imports all of that once; for each runner the server asks for, it forks a child that
already has everything imported, and that child forks the run's kernel from itself and
initialises an ``IPKernelApp`` in it. Every run still gets a fresh process and a fresh,
never-used kernel; only the import work is shared (copy on write).

Protocol: the server process holds one end of a Unix socket pair and writes one JSON line
per request (``{"kernel": name, "env": {...}}``, with the server's environment at that
moment). For each, the fork server answers with ``{"pid": n}`` and, as ancillary data
(``SCM_RIGHTS``), the runner's end of a fresh socket pair; the runner then speaks the JSON
lines protocol of :mod:`.runner` on it. The fork server exits when the server's end closes;
runners exit when their socket closes.

Traps avoided (see RECIPES §7): no ZMQ context and no thread exists in the fork server when it
forks; each runner calls ``setsid()``, and so does its kernel (the executor kills both process
groups), and gets ``/dev/null`` as stdio; children are reaped (``SIGCHLD`` ignored in the fork
server, restored in the runner, which waits for its kernel).

A forked kernel must behave as one that jupyter_client starts from its kernelspec: what the
runner set up for itself (signal handlers, the blocked-signal mask, its session, its atexit
handlers, its stdio) is put back, in the kernel, to what a fresh interpreter has
(:func:`_as_fresh_interpreter`), and the kernel ends as an interpreter does (non-daemon threads
joined, atexit handlers run). Only imported modules are shared, with what importing them did.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORKABLE_LAUNCHERS = ("ipykernel_launcher", "ipykernel")


def forkable(kernel_name: str) -> bool:
    """Whether runs of ``kernel_name`` can use a forked kernel: an ipykernel kernelspec
    running this very interpreter, with no environment of its own."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(kernel_name)
    except Exception:
        return False
    argv = list(spec.argv)
    if len(argv) < 3 or argv[1] != "-m" or argv[2] not in FORKABLE_LAUNCHERS or spec.env:
        return False
    exe = argv[0]
    if exe in ("python", "python3", f"python3.{sys.version_info[1]}"):
        return True  # jupyter_client runs these as sys.executable
    try:
        return os.path.samefile(exe, sys.executable)
    except OSError:
        return False


# The runner's side: fork the kernel, then drive it -----------------------------------------------


class _Child:
    """A ``subprocess.Popen`` look-alike for a forked child of this process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


# What a fresh interpreter has, as the fork server found it when it started (it is one):
# every signal's disposition and the blocked-signal mask. A kernel that jupyter_client starts
# inherits the same from the server, through the runner, since exec keeps ignored signals
# ignored and the mask as it is.
_fresh_signals: dict[int, Any] = {}
_fresh_mask: set[int] = set()
# atexit handlers registered while the fork server imported its modules: a fresh interpreter
# that imports them registers the same. Whatever is registered later is the runner's own.
_import_exits: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []


def _snapshot_fresh_state() -> None:
    for sig in signal.valid_signals():
        try:
            _fresh_signals[sig] = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
    _fresh_mask.update(signal.pthread_sigmask(signal.SIG_BLOCK, []))


@contextmanager
def _recording_exits() -> Iterator[None]:
    """Record the atexit registrations (and unregistrations) made inside the block."""
    register, unregister = atexit.register, atexit.unregister
    recording = True

    def record(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
        if recording:
            _import_exits.append((func, args, kwargs))
        return register(func, *args, **kwargs)

    def forget(func: Callable[..., Any]) -> None:
        if recording:
            _import_exits[:] = [e for e in _import_exits if e[0] != func]
        unregister(func)

    atexit.register, atexit.unregister = record, forget  # type: ignore[assignment]
    try:
        yield
    finally:
        recording = False
        atexit.register, atexit.unregister = register, unregister  # type: ignore[assignment]


def _as_fresh_interpreter(connection_file: str, runner: int, stdin: int) -> None:
    """In a forked kernel, before ipykernel starts: undo what the fork server and the runner
    changed for themselves, so the kernel sees what one started by jupyter_client sees."""
    # Its own session and process group (jupyter_client: start_new_session=True), so an
    # interrupt or a kill of the group reaches the kernel and its children, not the runner.
    os.setsid()
    for sig, handler in _fresh_signals.items():
        if handler is None:  # installed outside Python: nothing to restore it with
            continue
        try:
            signal.signal(sig, handler)
        except (OSError, ValueError, TypeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, _fresh_mask)
    # jupyter_client gives the kernel a pipe as stdin that nobody writes, and the parent's pid.
    os.dup2(stdin, 0)
    os.close(stdin)
    os.environ["JPY_PARENT_PID"] = str(runner)
    os.environ.pop("PYTHONEXECUTABLE", None)
    _fresh_exit_hooks()
    # What a kernel started by its kernelspec sees (a few notebooks read sys.argv).
    import ipykernel_launcher

    sys.argv = [ipykernel_launcher.__file__, "-f", connection_file]
    sys.orig_argv = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]


def _fresh_exit_hooks() -> None:
    """Keep the atexit handlers that importing the shared modules registered; drop those the
    fork server and the runner registered for themselves."""
    atexit._clear()
    for func, args, kwargs in _import_exits:
        atexit.register(func, *args, **kwargs)


def _finalize() -> None:
    """End as an interpreter ends (``Py_FinalizeEx``): join the non-daemon threads, run the
    atexit handlers, flush. The child then leaves by ``os._exit``: it must not unwind into the
    runner's frames it was forked from."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except Exception:
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def _kernel_child(connection_file: str, parent: int, stdin: int) -> None:
    """In the forked kernel process: become an ``IPKernelApp`` on ``connection_file``."""
    code = 0
    try:
        os.closerange(3, stdin)  # the runner's protocol socket is not the kernel's
        os.closerange(stdin + 1, 1 << 16)
        _as_fresh_interpreter(connection_file, parent, stdin)
        from ipykernel.kernelapp import IPKernelApp

        numpy = sys.modules.get("numpy")
        if numpy is not None:  # forked children share the parent's generator state
            numpy.random.seed()
        app = IPKernelApp.instance()
        app.initialize(["-f", connection_file, f"--IPKernelApp.parent_handle={parent}"])
        app.start()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        code = 1
    try:
        _finalize()
    finally:
        os._exit(code)


def fork_kernel(kernel_name: str) -> tuple[Any, Any, int]:
    """Fork a fresh kernel from this (pre-imported, single-threaded) process and connect to
    it: (manager, ready client, kernel pid). The manager is a real ``AsyncKernelManager``
    whose provisioner holds the forked process, so nbclient and papermill drive it (alive
    checks, interrupt, shutdown) as any other kernel."""
    from jupyter_client.connect import write_connection_file
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning.local_provisioner import LocalProvisioner
    from jupyter_core.utils import run_sync

    # Named after the runner: the server removes it if the runner is killed (timeout, cancel).
    folder = tempfile.mkdtemp(prefix=f"dataops-kernel-{os.getpid()}-")
    connection_file, _ = write_connection_file(
        os.path.join(folder, "kernel.json"), ip="127.0.0.1", kernel_name=kernel_name
    )
    me = os.getpid()
    stdin, unwritten = os.pipe()
    pid = os.fork()
    if pid == 0:
        _kernel_child(connection_file, me, stdin)  # never returns
    os.close(stdin)
    _held.append(unwritten)  # the kernel's stdin stays open, unwritten, as jupyter_client's
    km = AsyncKernelManager(kernel_name=kernel_name)
    km.load_connection_file(connection_file)
    provisioner = LocalProvisioner(kernel_id=os.path.basename(folder), kernel_spec=None, parent=km)
    child = _Child(pid)
    provisioner.process = child  # type: ignore[assignment]
    provisioner.pid = pid
    provisioner.pgid = pid  # its own group, as jupyter_client's kernels: interrupts take both
    km.provisioner = provisioner
    km._connection_file_written = True
    km._dataops_folder = folder  # type: ignore[attr-defined]
    _forked.append(km)
    kc = km.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
    except Exception:
        child.kill()
        child.wait(5)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return km, kc, pid


def stop_forked(km: Any, now: bool = True) -> None:
    """Kill a forked kernel and its process group (with ``now=False``: first shut it down as
    papermill does, see :func:`.runner.stop_kernel`), reap it and remove its connection file."""
    if not now:
        from jupyter_core.utils import run_sync

        try:
            run_sync(km.shutdown_kernel)(now=False)
        except Exception:
            pass
    process = getattr(km.provisioner, "process", None)
    if isinstance(process, _Child):
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
        process.kill()
        try:
            process.wait(5)
        except Exception:
            pass
    shutil.rmtree(getattr(km, "_dataops_folder", ""), ignore_errors=True)


_forked: list[Any] = []  # this runner's kernel managers, stopped however the runner ends
_held: list[int] = []  # the write ends of its kernels' stdin pipes


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _runner_child(sock: socket.socket, kernel_name: str, env: dict[str, str] | None) -> int:
    """In a forked runner: own session, quiet stdio, the server's environment as it is now
    (``env``, as a runner started as its own interpreter gets it), then the runner's protocol
    on ``sock``.

    However it ends (the run is over, the server went away, SIGTERM for a timeout or a
    cancel), its kernel is killed and the kernel's files removed on the way out.
    """
    os.setsid()
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    from . import runner

    inp = sock.makefile("r", encoding="utf-8")
    out = sock.makefile("w", encoding="utf-8")
    try:
        return runner.serve(kernel_name, inp, out, fork_kernel, stop_forked)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up is not interrupted
        for km in _forked:
            stop_forked(km)


# The fork server ---------------------------------------------------------------------------------

PRELOAD = (
    "jupyter_dataops.jobs.runner",
    "papermill",
    "papermill.engines",
    "papermill.clientwrap",
    "nbclient",
    "nbformat",
    "jupyter_client.manager",
    "jupyter_client.asynchronous",
    "jupyter_client.provisioning.local_provisioner",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "IPython.core.interactiveshell",
    "IPython.core.completer",
)


def serve_forks(ctrl: socket.socket, preload: tuple[str, ...] = ()) -> int:
    """The fork server's loop: one runner per request line, until the server goes away.

    ``preload``: more modules to import once for all kernels (``c.DataOps.kernel_preload``);
    one that fails to import is reported and skipped.
    """
    import importlib

    with _recording_exits():
        for name in PRELOAD:
            importlib.import_module(name)
        for name in preload:
            try:
                importlib.import_module(name)
            except Exception as e:
                print(f"dataops forkserver: cannot preload {name!r}: {e!r}", file=sys.stderr)
    from . import runner

    runner._engine()  # register papermill's engine once, before any fork
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # runners are reaped by the system
    if threading.active_count() != 1:  # forking a threaded process can deadlock the child
        print("dataops forkserver: threads exist after imports", file=sys.stderr)
        return 2
    requests = ctrl.makefile("r", encoding="utf-8")
    for line in requests:
        try:
            request = json.loads(line)
            if "signal" in request:  # a sandbox: the server may not signal our processes
                alive = _signal_runner([int(p) for p in request["pids"]], int(request["signal"]))
                ctrl.sendall(json.dumps({"alive": alive}).encode() + b"\n")
                continue
            if "remove" in request:
                _remove_leftovers([str(p) for p in request["remove"]])
                ctrl.sendall(b"{}\n")
                continue
            kernel_name = str(request["kernel"])
            env = request.get("env")
        except (ValueError, KeyError, TypeError):
            continue
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                requests.close()
                ctrl.close()
                mine.close()
                code = _runner_child(theirs, kernel_name, env)
            finally:
                os._exit(code)
        theirs.close()
        socket.send_fds(ctrl, [json.dumps({"pid": pid}).encode() + b"\n"], [mine.fileno()])
        mine.close()
    return 0


def _signal_runner(pids: list[int], sig: int) -> bool:
    """Signal a runner's group and its kernel's, as the executor does for its own children;
    False when none is left. Only processes of this fork server's user can be reached."""
    alive = False
    for pid in pids:
        if pid <= 1:
            continue
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
            alive = True
        except (ProcessLookupError, PermissionError):
            pass
    return alive


def _remove_leftovers(paths: list[str]) -> None:
    """A killed runner's kernel connection folders (only those: named as fork_kernel names
    them, in the temporary directory)."""
    tmp = os.path.realpath(tempfile.gettempdir())
    for path in paths:
        real = os.path.realpath(path)
        if os.path.dirname(real) == tmp and os.path.basename(real).startswith("dataops-kernel-"):
            shutil.rmtree(real, ignore_errors=True)


# The server's side ------------------------------------------------------------------------------


class ForkServer:
    """The server's handle on its fork server process (blocking calls: use a thread)."""

    def __init__(self, cwd: str, preload: tuple[str, ...] = ()) -> None:
        import subprocess

        self._lock = threading.Lock()
        self._sock, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_dataops.jobs.forkserver",
                str(theirs.fileno()),
                *preload,
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
        theirs.close()

    def spawn(self, kernel_name: str, timeout: float = 60.0) -> tuple[int, socket.socket]:
        """A new runner: its pid and the socket its protocol runs on."""
        with self._lock:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fork server exited (code {self.proc.returncode})")
            self._sock.settimeout(timeout)
            request = {"kernel": kernel_name, "env": dict(os.environ)}
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            data, fds, _, _ = socket.recv_fds(self._sock, 4096, 1)
            if not data or not fds:
                raise RuntimeError("the fork server closed its socket")
            return int(json.loads(data)["pid"]), socket.socket(fileno=fds[0])

    def close(self) -> None:
        self._sock.close()  # the fork server ends at EOF
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait()


class SandboxForkServer:
    """The service's handle on a fork server that runs as another OS user (started by the
    root launcher, see :mod:`jupyter_dataops.team.sandbox`): the same ``spawn``, plus the
    signals and clean-ups the service may not do itself. Runners get the fork server's own
    clean environment, never the service's."""

    def __init__(self, user: str, pid: int, sock: socket.socket) -> None:
        self.user = user
        self.pid = pid
        self._sock = sock
        self._lock = threading.Lock()
        self.dead = False

    def _ask(self, request: dict[str, Any], timeout: float = 30.0) -> tuple[bytes, list[int]]:
        with self._lock:
            if self.dead:
                raise RuntimeError(f"the fork server of OS user {self.user!r} has exited")
            try:
                self._sock.settimeout(timeout)
                self._sock.sendall(json.dumps(request).encode() + b"\n")
                data, fds, _, _ = socket.recv_fds(self._sock, 4096, 1)
            except OSError as e:
                self.dead = True
                raise RuntimeError(f"the fork server of {self.user!r} is gone: {e}") from None
            if not data:
                self.dead = True
                raise RuntimeError(f"the fork server of OS user {self.user!r} has exited")
            return data, list(fds)

    def spawn(self, kernel_name: str, timeout: float = 60.0) -> tuple[int, socket.socket]:
        data, fds = self._ask({"kernel": kernel_name}, timeout)
        if not fds:
            raise RuntimeError("the fork server sent no runner socket")
        return int(json.loads(data)["pid"]), socket.socket(fileno=fds[0])

    def signal(self, pids: list[int], sig: int) -> bool:
        data, _ = self._ask({"signal": int(sig), "pids": [int(p) for p in pids if p]})
        return bool(json.loads(data).get("alive"))

    def remove(self, paths: list[str]) -> None:
        self._ask({"remove": list(paths)})

    def close(self) -> None:
        self.dead = True
        self._sock.close()  # the fork server ends at EOF


def main() -> int:
    _snapshot_fresh_state()  # first: this process is still as a fresh interpreter starts
    ctrl = socket.socket(fileno=int(sys.argv[1]))
    ctrl.setblocking(True)
    # Be a quiet, clean parent: the cwd is the workspace (as for plain runners).
    sys.path[:] = [p for p in sys.path if p not in ("", str(Path.cwd()))]
    return serve_forks(ctrl, tuple(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
