"""A warm runner: one process, one fresh kernel, one run, then it exits.

The server keeps a few of these started ahead of time. Each has papermill imported and its
kernel started and ready, so a run pays neither on its critical path. The protocol is JSON
lines: the runner prints ``{"event": "ready"}``, reads one job from stdin, prints
``progress`` events as cells start, and ends with ``done``. Nothing is reused: the kernel and
the process die with the run.

:func:`execute` is what a run does in its kernel, shared with the Dask executor's
:func:`run_on_worker` (a task on a ``distributed`` worker).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

Progress = Callable[..., None]

CELL_MARK = "dataops_cell"  # cell metadata: the cell's index in the submitted notebook
MARKED_INPUT = ".marked-input.ipynb"  # beside the output: what papermill reads (then removed)
OUTPUT_CHARS = 2000  # of a failing cell's last output, kept in the run's error


class Cells:
    """The submitted notebook's cells, followed through papermill's run of them.

    papermill runs another list of cells: it inserts its ``injected-parameters`` cell and drops
    the error markers and the injected cell of an earlier papermill run. Each submitted cell
    is marked with its index before papermill reads the notebook (:meth:`marked`), and the
    marks are taken off before papermill writes anything (:meth:`adopt`), so every cell
    papermill runs maps back to the notebook the user submitted.
    """

    def __init__(self, input_path: str) -> None:
        import nbformat

        self.input_path = input_path
        self.nb = nbformat.read(input_path, as_version=4)
        self.ids: list[str | None] = [c.get("id") for c in self.nb.cells]
        self.origin: list[int | None] = []  # papermill's cell i is the submitted cell origin[i]
        self.done: dict[int, Any] = {}  # papermill index -> the cell once executed
        self.current: int | None = None  # papermill index of the cell executing

    def marked(self, path: str) -> str:
        """Write the submitted notebook with its cells marked to ``path``, for papermill."""
        import nbformat

        for i, cell in enumerate(self.nb.cells):
            cell.metadata[CELL_MARK] = i
        nbformat.write(self.nb, path)
        return path

    def adopt(self, nb: Any) -> None:
        """papermill's notebook, before execution: read and remove the marks."""
        self.origin = []
        for cell in nb.cells:
            mark = cell.metadata.pop(CELL_MARK, None)
            self.origin.append(mark if isinstance(mark, int) else None)
        papermill_meta = nb.metadata.get("papermill")
        if isinstance(papermill_meta, dict):  # the run's input, not the marked copy
            papermill_meta["input_path"] = self.input_path

    def submitted(self, index: int | None) -> int | None:
        """The submitted index of papermill's cell ``index`` (None: papermill's own cell)."""
        if index is None or not 0 <= index < len(self.origin):
            return None
        return self.origin[index]

    def where(self, index: int | None) -> dict[str, Any]:
        """``cell_index`` (in the submitted notebook) and ``cell_id`` of papermill's cell."""
        mine = self.submitted(index)
        where: dict[str, Any] = {"cell_index": mine, "cell_id": None}
        if mine is not None:
            where["cell_id"] = self.ids[mine]
        elif index is not None and 0 <= index < len(self.origin):
            where["injected"] = True  # papermill's injected-parameters cell
        return where

    def last_output(self, index: int | None) -> str | None:
        """The text of the last output (not the error) of papermill's cell ``index``."""
        cell = self.done.get(index) if index is not None else None
        for out in reversed((cell or {}).get("outputs") or []):
            kind = out.get("output_type")
            if kind == "stream":
                text = out.get("text")
            elif kind in ("execute_result", "display_data"):
                text = (out.get("data") or {}).get("text/plain")
            else:
                continue
            if isinstance(text, list):
                text = "".join(text)
            if isinstance(text, str) and text.strip():
                return _plain(text.rstrip())[-OUTPUT_CHARS:]
        return None


def _plain(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


_out: Any = None  # where protocol events go: stdout, or a forked runner's socket
_emit_lock = threading.Lock()  # a shipped run's log follower emits from its own thread


def emit(event: str, **data: Any) -> None:
    out: Any = _out or sys.__stdout__
    line = json.dumps({"event": event, **data}) + "\n"
    with _emit_lock:
        out.write(line)
        out.flush()


SHIP_CHUNK = 40_000  # bytes of a file per event: a protocol line stays under 64 KiB
SHIPPED = ("notebook", "html", "pdf")


class _LogFollower(threading.Thread):
    """Emits what is appended to a shipped run's log as ``log`` events, as it comes."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True, name="dataops-log")
        self.path = path
        self.offset = 0
        self.done = threading.Event()

    def _send(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if data:
            self.offset += len(data)
            for i in range(0, len(data), SHIP_CHUNK):
                emit("log", text=data[i : i + SHIP_CHUNK].decode("utf-8", "replace"))

    def run(self) -> None:
        while not self.done.wait(0.2):
            self._send()
        self._send()


def execute_shipped(
    job: dict[str, Any], km: Any, kc: Any, kernel_name: str, progress: Progress
) -> dict[str, Any]:
    """A run in a sandbox (another OS user than the server's, see team/sandbox.py): the input
    comes inline, the run works in a private temporary directory, and its log and outputs go
    back over the protocol (``log`` and ``file`` events): it needs no access to the server's
    files, and the server none to its."""
    import base64
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=f"dataops-run-{job['run_id']}-"))
    local = {
        **job,
        "input_path": str(tmp / "input.ipynb"),
        "output_path": str(tmp / "output.ipynb"),
        "log_path": str(tmp / "run.log"),
        "cwd": str(tmp),
        # Its tracking spool is its own too; it goes back at the end (the server sends on to
        # MLflow what the kernel had not sent itself).
        "env": {**job.get("env", {}), "DATAOPS_SPOOL_DIR": str(tmp / "spool")},
    }
    Path(local["input_path"]).write_bytes(base64.b64decode(job["input_b64"]))
    local.pop("input_b64", None)
    follower = _LogFollower(local["log_path"])
    follower.start()
    try:
        result = execute(local, km, kc, kernel_name, progress)
    finally:
        follower.done.set()
        follower.join(10)
    try:
        shipped = {}
        for name, path in (result.get("outputs") or {}).items():
            if name not in SHIPPED or not Path(path).is_file():
                continue
            data = Path(path).read_bytes()
            for i in range(0, max(len(data), 1), SHIP_CHUNK):
                emit("file", name=name, data=base64.b64encode(data[i : i + SHIP_CHUNK]).decode())
            shipped[name] = name
        spool = tmp / "spool"
        for path in sorted(spool.glob("*")) if spool.is_dir() else []:
            data = path.read_bytes()
            for i in range(0, max(len(data), 1), SHIP_CHUNK):
                emit("file", name="spool", file=path.name,
                     data=base64.b64encode(data[i : i + SHIP_CHUNK]).decode())  # fmt: skip
        if "outputs" in result:
            result["outputs"] = shipped
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _preamble(job: dict[str, Any]) -> str:
    # Runs in the kernel before the notebook: the run's identity and working directory.
    env = json.dumps(job["env"])
    return (
        "import os as _os, sys as _sys\n"
        f"_os.environ.update(__import__('json').loads({env!r}))\n"
        f"_os.chdir({job['cwd']!r})\n"
        f"_sys.path.insert(0, {job['cwd']!r})\n"
        "del _os, _sys\n" + _renewal(job.get("renew_every_s"))
    )


def _renewal(every: float | None) -> str:
    # Plain `mlflow.log_*` sends the run's token as it is: it must not expire mid-run. A timer,
    # so nothing is imported now (the client is loaded when it first fires).
    if not every:
        return ""
    return (
        "def _dops_renew():\n"
        "    from jupyter_dataops.client import keep_fresh\n"
        f"    keep_fresh({float(every)!r})\n"
        "_dops_timer = __import__('threading').Timer"
        f"({float(every)!r}, _dops_renew)\n"
        "_dops_timer.daemon = True\n"
        "_dops_timer.start()\n"
        "del _dops_timer\n"
    )


def _engine() -> str:
    """Register (once per process) papermill's engine that reports cells as they start.

    The engine takes the kernel manager (``km``), the runner's connected client
    (``dataops_kc``) and a ``dataops_progress`` callback as engine keyword arguments, so
    concurrent runs in one process (a Dask worker) share no state.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import Engine as PapermillEngine
    from papermill.engines import papermill_engines

    class Client(PapermillNotebookClient):
        """papermill's client, driving the runner's already connected kernel client when it
        has one (nbclient would connect a second one and wait for it: 0.2 s at least)."""

        def __init__(self, nb_man: Any, given_kc: Any = None, **kw: Any) -> None:
            super().__init__(nb_man, **kw)
            self.given_kc = given_kc

        def start_new_kernel_client(self) -> Any:
            if self.given_kc is None:
                return super().start_new_kernel_client()
            self.kc = self.given_kc
            self.kc.allow_stdin = False
            return self.kc

    class Engine(PapermillEngine):
        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, **kwargs: Any) -> Any:
            cells: Cells | None = kwargs.get("dataops_cells")
            if cells is not None:  # before papermill saves the notebook for the first time
                cells.adopt(nb)
            return super().execute_notebook(nb, kernel_name, **kwargs)

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: float = 60,
            execution_timeout: float | None = None,
            **kwargs: Any,
        ) -> Any:
            progress: Progress = kwargs.pop("dataops_progress")
            started: float = kwargs.pop("dataops_started")
            kc = kwargs.pop("dataops_kc", None)
            cells: Cells | None = kwargs.pop("dataops_cells", None)
            kwargs.pop("input_path", None)

            def submitted(index: int | None) -> int | None:
                return cells.submitted(index) if cells is not None else index

            # "cell i of n" counts the submitted notebook's code cells, not papermill's own.
            total = sum(
                1
                for i, c in enumerate(nb_man.nb.cells)
                if c.cell_type == "code" and submitted(i) is not None
            )
            seen = {"n": 0}
            cell_start, cell_complete = nb_man.cell_start, nb_man.cell_complete

            def on_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                if cells is not None:
                    cells.current = cell_index
                mine = submitted(cell_index)
                if cell.cell_type == "code" and mine is not None:
                    seen["n"] += 1
                    src = cell.source.strip().splitlines()
                    progress(
                        cell=seen["n"],
                        of=total,
                        index=mine,
                        source=(src[0][:120] if src else ""),
                        elapsed=round(time.monotonic() - started, 3),
                    )
                return cell_start(cell, cell_index, **kw)

            def on_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                if cells is not None and cell_index is not None:
                    cells.done[cell_index] = cell
                return cell_complete(cell, cell_index, **kw)

            nb_man.cell_start = on_start
            nb_man.cell_complete = on_complete
            client = Client(
                nb_man,
                given_kc=kc,
                kernel_name=kernel_name,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            )
            return client.execute()

    if "dataops" not in papermill_engines._engines:
        papermill_engines.register("dataops", Engine)
    return "dataops"


def start_kernel(kernel_name: str, **launch: Any) -> tuple[Any, Any, int | None]:
    """Start a kernel and wait until it answers: (manager, client, kernel pid). ``launch``:
    more arguments of jupyter_client's ``launch_kernel`` (``stdout=``...)."""
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    km = AsyncKernelManager(kernel_name=kernel_name)
    run_sync(km.start_kernel)(**launch)
    kc = km.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
    except Exception:
        stop_kernel(km)
        raise
    provisioner = getattr(km, "provisioner", None)
    return km, kc, getattr(getattr(provisioner, "process", None), "pid", None)


def stop_kernel(km: Any, now: bool = True) -> None:
    """Kill the kernel, or with ``now=False`` shut it down as papermill does at the end of a
    run: a shutdown request, so it ends as an interpreter ends (its atexit hooks run), killed
    only if it does not within jupyter_client's ``shutdown_wait_time``."""
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=now)
    except Exception:
        if not now:
            stop_kernel(km, now=True)


def execute(
    job: dict[str, Any], km: Any, kc: Any, kernel_name: str, progress: Progress
) -> dict[str, Any]:
    """Run ``job`` in the started kernel: the preamble, then papermill.

    Returns ``{"status": "succeeded", "outputs": {...}}`` or ``{"status": "failed", "error":
    {...}}``; the cells' output goes to ``job["log_path"]``. Does not stop the kernel.
    """
    import papermill
    from jupyter_core.utils import run_sync

    started = time.monotonic()
    engine = _engine()
    log = open(job["log_path"], "a", buffering=1, encoding="utf-8")
    cells: Cells | None = None
    marked: str | None = None
    try:
        reply = run_sync(kc.execute_interactive)(_preamble(job), timeout=30, store_history=False)
        if reply["content"]["status"] != "ok":
            raise RuntimeError("the run's set-up code failed in the kernel")
        log.write(f"[dataops] run {job['run_id']}: executing {job['notebook']}\n")
        cells = Cells(job["input_path"])
        marked = str(Path(job["output_path"]).with_name(MARKED_INPUT))
        papermill.execute_notebook(
            cells.marked(marked),
            job["output_path"],
            parameters=job["parameters"],
            engine_name=engine,
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            stdout_file=log,
            stderr_file=log,
            request_save_on_cell_execute=True,
            km=km,
            dataops_kc=kc,
            dataops_progress=progress,
            dataops_started=started,
            dataops_cells=cells,
        )
        outputs = {"notebook": job["output_path"], "log": job["log_path"]}
        formats = job.get("output_formats", [])
        if "html" in formats or "pdf" in formats:
            from . import render

            page = render.html(job["output_path"])
            if "html" in formats:
                outputs["html"] = page
            if "pdf" in formats:
                log.write("[dataops] rendering the PDF\n")
                outputs["pdf"] = render.pdf(job["output_path"], page)
                if "html" not in formats:
                    Path(page).unlink(missing_ok=True)
        log.write(f"[dataops] succeeded in {time.monotonic() - started:.2f} s\n")
        return {"status": "succeeded", "outputs": outputs}
    except Exception as e:
        error = _describe(e, cells)
        log.write(f"[dataops] failed: {error['message']}\n")
        return {"status": "failed", "error": error}
    finally:
        log.close()
        if marked is not None:
            Path(marked).unlink(missing_ok=True)


def serve(
    kernel_name: str,
    inp: Any,
    out: Any,
    start: Callable[[str], tuple[Any, Any, int | None]],
    stop: Callable[..., None],
) -> int:
    """The runner's protocol on ``inp``/``out``: start the kernel, say ``ready``, run one job."""
    global _out
    _out = out
    try:
        km, kc, pid = start(kernel_name)
    except Exception as e:
        emit("failed_to_start", error=f"{type(e).__name__}: {e}")
        return 3
    # What a kill would leave behind (the kernel's connection file): the server removes it.
    leftovers = [getattr(km, "_dataops_folder", None) or km.connection_file]
    emit("ready", kernel_pid=pid, pid=os.getpid(), leftovers=leftovers)
    line = inp.readline()
    if not line:  # the server let this runner go unused
        stop(km)
        return 0
    job = json.loads(line)
    run = execute_shipped if job.get("ship") else execute
    result = run(job, km, kc, kernel_name, lambda **d: emit("progress", **d))
    emit("done", **result)
    # The run is over (and recorded); the kernel shuts down and goes with the runner.
    stop(km, now=False)
    return 0 if result["status"] == "succeeded" else 1


def main() -> int:
    kernel_name = sys.argv[1] if len(sys.argv) > 1 else "python3"
    import subprocess

    import papermill  # noqa: F401  (imported ahead of the run)

    def start(name: str) -> tuple[Any, Any, int | None]:
        # Not this runner's stdout: that is its protocol to the server.
        return start_kernel(name, stdout=subprocess.DEVNULL)

    return serve(kernel_name, sys.stdin, sys.stdout, start, stop_kernel)


def run_on_worker(
    job: dict[str, Any],
    notebook: bytes,
    kernel_name: str,
    timeout_s: float | None = None,
    cancel_event: str | None = None,
) -> dict[str, Any]:
    """A Dask task: run one job in a fresh kernel on this worker, in a temporary directory.

    The worker need not share the server's disk: the input notebook comes as bytes, and the
    output notebook, the log (and the html) go back in the result. The working directory is
    the notebook's directory when it exists here (a shared file system), else the temporary
    directory; it is set in the kernel by the preamble (never papermill's ``cwd=``, which
    would ``chdir`` the whole multi-threaded worker). The kernel is killed when the run
    exceeds ``timeout_s`` or when the server sets the ``distributed.Event`` ``cancel_event``.
    """
    import shutil
    import tempfile

    worker_name = None
    local_dir = None
    client = None
    worker: Any = None
    try:
        from distributed import get_client, get_worker

        worker = get_worker()
        worker_name, local_dir = str(worker.name), worker.local_directory
        client = get_client() if cancel_event else None
    except Exception:  # not in a worker (called directly)
        pass
    tmp = Path(tempfile.mkdtemp(prefix=f"dataops-run-{job['run_id']}-", dir=local_dir))
    # The notebook's folder when this worker shares it (and may enter it: a worker of the
    # team's service may not), else the run's temporary folder.
    shared = os.path.isdir(job["cwd"]) and os.access(job["cwd"], os.R_OK | os.X_OK)
    cwd = job["cwd"] if shared else str(tmp)
    wjob = {
        **job,
        "input_path": str(tmp / "input.ipynb"),
        "output_path": str(tmp / "output.ipynb"),
        "log_path": str(tmp / "run.log"),
        "cwd": cwd,
        # The kernel's tracking spool is the worker's; it goes back with the result, and the
        # server sends what the kernel had not (tracking/spool.py).
        "env": {**job.get("env", {}), "DATAOPS_SPOOL_DIR": str(tmp / "spool")},
    }
    Path(wjob["input_path"]).write_bytes(notebook)
    last: dict[str, Any] = {}

    def progress(**data: Any) -> None:
        last.update(data)
        if worker is not None:  # live, to the server's subscription (executors/dask.py)
            try:
                worker.log_event(
                    "dataops-progress", {**data, "run_id": job["run_id"], "on": worker_name}
                )
            except Exception:
                pass

    killed: dict[str, str] = {}
    done = threading.Event()
    try:
        with open(wjob["log_path"], "a", encoding="utf-8") as log:
            log.write(f"[dataops] on dask worker {worker_name}, in {cwd}\n")
        try:
            km, kc, pid = start_kernel(kernel_name)
        except Exception as e:
            result: dict[str, Any] = {
                "status": "failed",
                "error": {"reason": "kernel_start", "message": f"{type(e).__name__}: {e}"},
            }
        else:
            watchdog = threading.Thread(
                target=_watch,
                args=(pid, done, killed, timeout_s, cancel_event, client),
                daemon=True,
                name=f"dataops-watch-{job['run_id']}",
            )
            watchdog.start()
            try:
                result = execute(wjob, km, kc, kernel_name, progress)
            finally:
                done.set()
                stop_kernel(km, now=bool(killed))
                watchdog.join(5)
        if killed:
            reason = killed["reason"]
            status = "timed_out" if reason == "timeout" else "cancelled"
            message = (
                f"the run exceeded its timeout of {timeout_s:g} s and was killed"
                if reason == "timeout"
                else "cancelled while running"
            )
            result = {"status": status, "error": {"reason": reason, "message": message}}
        out = Path(wjob["output_path"])
        html, pdf = out.with_suffix(".html"), out.with_suffix(".pdf")
        return {
            "status": result["status"],
            "error": result.get("error"),
            "notebook": out.read_bytes() if out.exists() else None,
            "html": html.read_bytes() if html.exists() else None,
            "pdf": pdf.read_bytes() if pdf.exists() else None,
            "log": Path(wjob["log_path"]).read_text(encoding="utf-8", errors="replace"),
            "progress": last,
            "worker": worker_name,
            "spool": {
                p.name: p.read_bytes() for p in sorted((tmp / "spool").glob("*")) if p.is_file()
            }
            if (tmp / "spool").is_dir()
            else {},
        }
    finally:
        done.set()
        shutil.rmtree(tmp, ignore_errors=True)


def _watch(
    pid: int | None,
    done: threading.Event,
    killed: dict[str, str],
    timeout_s: float | None,
    cancel_event: str | None,
    client: Any,
) -> None:
    """Kill the run's kernel at its deadline or when the server cancels the run."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    event = None
    if cancel_event and client is not None:
        from distributed import Event

        event = Event(cancel_event, client=client)
    while not done.is_set():
        reason = None
        if deadline is not None and time.monotonic() >= deadline:
            reason = "timeout"
        elif event is not None:
            try:
                if event.wait(timeout=0.5):
                    reason = "cancelled"
            except Exception:
                done.wait(0.5)
        else:
            done.wait(0.5)
        if reason and not done.is_set():
            killed["reason"] = reason
            _kill(pid)
            return


def _kill(pid: int | None) -> None:
    if not pid:
        return
    try:  # jupyter_client starts kernels in their own session: take the group
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _cell_name(where: dict[str, Any]) -> str:
    if where.get("cell_index") is not None:
        return f"cell {where['cell_index'] + 1}"
    return "papermill's injected-parameters cell" if where.get("injected") else "a cell"


def _describe(e: Exception, cells: Cells | None = None) -> dict[str, Any]:
    """A run's error, its cell named in the submitted notebook's numbering (``cell_index``,
    0-based, and ``cell_id``), never in papermill's."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(e, PapermillExecutionError):
        where = cells.where(e.cell_index) if cells is not None else {"cell_index": e.cell_index}
        output = cells.last_output(e.cell_index) if cells is not None else None
        evalue = _plain(str(e.evalue or ""))
        if evalue.strip():
            message = f"{e.ename}: {evalue}"
        else:  # a failing magic: the reason is in what the cell printed
            failed = (
                f"{_cell_name(where)} failed"
                if e.ename == "CellExecutionError"
                else f"{e.ename} in {_cell_name(where)}"
            )
            first = (e.source or "").strip().splitlines()
            if output:
                message = f"{failed}, with no error message; its last output: "
                message += output.strip().splitlines()[-1]
            else:
                message = f"{failed}, with no error message and no output"
                if first:
                    message += f": {first[0][:120]}"
        return {
            "reason": "cell_error",
            "message": message,
            "ename": e.ename,
            "evalue": e.evalue,
            **where,
            "exec_count": e.exec_count,
            "source": e.source,
            "output": output,
            "traceback": _plain("\n".join(e.traceback)),
        }
    name = type(e).__name__
    if name == "DeadKernelError":
        error: dict[str, Any] = {"reason": "kernel_died", "message": f"the kernel died: {e}"}
        if cells is not None and cells.current is not None:
            where = cells.where(cells.current)
            cell = cells.nb.cells[where["cell_index"]] if where["cell_index"] is not None else None
            error.update(where, source=cell.source if cell is not None else None)
            error["message"] = f"the kernel died in {_cell_name(where)}"
        return error
    return {"reason": "error", "message": f"{name}: {e}", "traceback": traceback.format_exc()}


if __name__ == "__main__":
    sys.exit(main())
