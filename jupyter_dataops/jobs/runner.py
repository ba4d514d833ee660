"""A warm runner: one process, one fresh kernel, one run, then it exits.

The server keeps a few of these started ahead of time. Each has papermill imported and its
kernel started and ready, so a run pays neither on its critical path. The protocol is JSON
lines: the runner prints ``{"event": "ready"}``, reads one job from stdin, prints
``progress`` events as cells start, and ends with ``done``. Nothing is reused: the kernel and
the process die with the run.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any


def emit(event: str, **data: Any) -> None:
    sys.__stdout__.write(json.dumps({"event": event, **data}) + "\n")  # type: ignore[union-attr]
    sys.__stdout__.flush()  # type: ignore[union-attr]


def _preamble(job: dict[str, Any]) -> str:
    # Runs in the kernel before the notebook: the run's identity and working directory.
    env = json.dumps(job["env"])
    return (
        "import os as _os, sys as _sys\n"
        f"_os.environ.update(__import__('json').loads({env!r}))\n"
        f"_os.chdir({job['cwd']!r})\n"
        f"_sys.path.insert(0, {job['cwd']!r})\n"
        "del _os, _sys\n"
    )


def main() -> int:
    kernel_name = sys.argv[1] if len(sys.argv) > 1 else "python3"
    import papermill
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from papermill.engines import NBClientEngine, papermill_engines

    km = AsyncKernelManager(kernel_name=kernel_name)
    try:
        run_sync(km.start_kernel)()
        kc = km.client()
        kc.start_channels()
        run_sync(kc.wait_for_ready)(timeout=60)
    except Exception as e:
        emit("failed_to_start", error=f"{type(e).__name__}: {e}")
        return 3
    provisioner = getattr(km, "provisioner", None)
    emit("ready", kernel_pid=getattr(getattr(provisioner, "process", None), "pid", None))

    line = sys.stdin.readline()
    if not line:  # the server let this runner go unused
        run_sync(km.shutdown_kernel)(now=True)
        return 0
    job = json.loads(line)
    started = time.monotonic()

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            total = sum(1 for c in nb_man.nb.cells if c.cell_type == "code")
            seen = {"n": 0}
            cell_start = nb_man.cell_start

            def on_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                if cell.cell_type == "code":
                    seen["n"] += 1
                    src = cell.source.strip().splitlines()
                    emit(
                        "progress",
                        cell=seen["n"],
                        of=total,
                        index=cell_index,
                        source=(src[0][:120] if src else ""),
                        elapsed=round(time.monotonic() - started, 3),
                    )
                return cell_start(cell, cell_index, **kw)

            nb_man.cell_start = on_start
            return super().execute_managed_notebook(nb_man, kernel_name, km=km, **kwargs)

    papermill_engines.register("dataops", Engine)
    log = open(job["log_path"], "a", buffering=1, encoding="utf-8")
    try:
        reply = run_sync(kc.execute_interactive)(_preamble(job), timeout=30, store_history=False)
        if reply["content"]["status"] != "ok":
            raise RuntimeError("the run's set-up code failed in the kernel")
        kc.stop_channels()
        log.write(f"[dataops] run {job['run_id']}: executing {job['notebook']}\n")
        papermill.execute_notebook(
            job["input_path"],
            job["output_path"],
            parameters=job["parameters"],
            engine_name="dataops",
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            stdout_file=log,
            stderr_file=log,
            request_save_on_cell_execute=True,
        )
        outputs = {"notebook": job["output_path"], "log": job["log_path"]}
        if "html" in job.get("output_formats", []):
            outputs["html"] = _html(job["output_path"])
        log.write(f"[dataops] succeeded in {time.monotonic() - started:.2f} s\n")
        log.flush()
        emit("done", status="succeeded", outputs=outputs)
        code = 0
    except Exception as e:
        error = _describe(e)
        log.write(f"[dataops] failed: {error['message']}\n")
        log.flush()
        emit("done", status="failed", error=error)
        code = 1
    finally:
        log.close()
    # The run is over; the kernel goes with the process.
    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:
        pass
    return code


def _describe(e: Exception) -> dict[str, Any]:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(e, PapermillExecutionError):
        return {
            "reason": "cell_error",
            "message": f"{e.ename}: {e.evalue}",
            "ename": e.ename,
            "evalue": e.evalue,
            "cell_index": e.cell_index,
            "exec_count": e.exec_count,
            "source": e.source,
            "traceback": "\n".join(e.traceback),
        }
    name = type(e).__name__
    if name == "DeadKernelError":
        return {"reason": "kernel_died", "message": f"the kernel died: {e}"}
    return {"reason": "error", "message": f"{name}: {e}", "traceback": traceback.format_exc()}


def _html(notebook: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(notebook, as_version=4)
    )
    out = str(Path(notebook).with_suffix(".html"))
    Path(out).write_text(body, encoding="utf-8")
    return out


if __name__ == "__main__":
    sys.exit(main())
