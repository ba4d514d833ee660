"""jupyter-dataops: governed data, tracked runs, production notebook jobs and dashboards.

In a notebook::

    import jupyter_dataops as dops
    dops.status()

Importing this package is cheap: the kernel-side API is loaded on first use, and nothing of
the server (SQLAlchemy, Tornado, pydantic) is imported by it.
"""

from __future__ import annotations

from typing import Any

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0+unknown"

# The kernel API, resolved lazily from jupyter_dataops.client (PEP 562).
_CLIENT_API = (
    "status", "datasets", "describe", "pull", "lineage", "run_notebook", "publish", "connect",
    "Client", "DataOpsClientError", "run", "Run", "active_run", "log_param", "log_params",
    "log_metric", "log_metrics", "set_tag", "log_artifact", "log_figure", "flush", "compare",
)  # fmt: skip

__all__ = ["__version__", *_CLIENT_API]


def __getattr__(name: str) -> Any:
    if name in _CLIENT_API:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'jupyter_dataops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_CLIENT_API])


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import DataOpsApp

    return [{"module": "jupyter_dataops.app", "app": DataOpsApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-dataops"}]
