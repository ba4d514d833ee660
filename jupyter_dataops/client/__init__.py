"""The kernel-side client: talks to the DataOps server that started this kernel or job.

The server puts ``JUPYTER_DATAOPS_URL`` and ``JUPYTER_DATAOPS_TOKEN`` in the environment of
every kernel it starts, so ``import jupyter_dataops as dops; dops.status()`` needs no set-up.
Imports nothing of the server side.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

URL_ENV = "JUPYTER_DATAOPS_URL"
TOKEN_ENV = "JUPYTER_DATAOPS_TOKEN"
# "token" in team mode: kernels send their JupyterHub API token to the DataOps service.
SCHEME_ENV = "JUPYTER_DATAOPS_AUTH_SCHEME"
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
# Team mode: the user's server's root, where the notebooks the service has not are.
ROOT_ENV = "JUPYTER_DATAOPS_ROOT"
API_PREFIX = "dataops/api/v1/"
TRACKED_RUN_HEADER = "X-DataOps-MLflow-Run"


class DataOpsClientError(Exception):
    """A request to the DataOps server failed; ``code`` and ``status`` say how."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "client_error",
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = details or {}


class Client:
    """A connection to one DataOps server.

    Example::

        c = Client("http://127.0.0.1:8888/", token="...")
        c.status()["user"]["name"]
    """

    def __init__(
        self, url: str, token: str, *, timeout: float = 60.0, scheme: str = "DataOps"
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.timeout = timeout
        # "DataOps" for the tokens a server gives its kernels and runs (renewed here before
        # they expire); "token" for Jupyter or JupyterHub API tokens.
        self.scheme = scheme
        self._renew_lock = threading.Lock()
        # Every governed read of this session: dataset, version, rows (for run lineage).
        self.lineage: list[dict[str, Any]] = []

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        *,
        data: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = urllib.parse.urljoin(self.url, API_PREFIX + path.lstrip("/"))
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        if data is None and body is not None:
            data = json.dumps(body).encode()
        if self.scheme == "DataOps" and _expires_soon(self.token):
            self.renew()
        for attempt in (1, 2):
            req = urllib.request.Request(url, data=data, method=method)
            req.add_header("Authorization", f"{self.scheme} {self.token}")
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            if data is not None:
                req.add_header("Content-Type", content_type)
            try:
                return urllib.request.urlopen(req, timeout=self.timeout)
            except urllib.error.HTTPError as e:
                err = _from_http_error(e)
                if attempt == 1 and self.scheme == "DataOps" and _expired(err):
                    self.renew()  # the kernel slept past its token's expiry
                    continue
                raise err from None
            except urllib.error.URLError as e:
                raise DataOpsClientError(
                    f"cannot reach the DataOps server at {self.url}: {e.reason}",
                    code="unreachable",
                ) from None
        raise AssertionError("unreachable")

    def renew(self) -> None:
        """Exchange this client's DataOps token for a fresh one (the server does so only while
        the token's kernel or run lives)."""
        with self._renew_lock:
            url = urllib.parse.urljoin(self.url, API_PREFIX + "token/renew")
            req = urllib.request.Request(url, data=b"{}", method="POST")
            req.add_header("Authorization", f"DataOps {self.token}")
            req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    fresh = json.loads(resp.read())["token"]
            except urllib.error.HTTPError as e:
                raise _from_http_error(e) from None
            except urllib.error.URLError as e:
                raise DataOpsClientError(
                    f"cannot reach the DataOps server at {self.url}: {e.reason}",
                    code="unreachable",
                ) from None
            for env in (TOKEN_ENV, "MLFLOW_TRACKING_TOKEN"):
                if os.environ.get(env) == self.token:
                    # What this kernel starts next gets it too, and so does MLflow's client,
                    # which reads MLFLOW_TRACKING_TOKEN at every request.
                    os.environ[env] = fresh
            self.token = fresh

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        with self._open(method, path, body, params) as resp:
            payload = resp.read()
        return json.loads(payload) if payload else None

    def request_raw(
        self, method: str, path: str, data: bytes, content_type: str = "application/json"
    ) -> bytes:
        with self._open(method, path, data=data, content_type=content_type) as resp:
            return bytes(resp.read())

    def status(self) -> dict[str, Any]:
        return self.request("GET", "status")

    def datasets(self, q: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "datasets", params={"q": q, "tag": tag})["datasets"]

    def describe(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"datasets/{urllib.parse.quote(name, safe='')}")

    def pull_arrow(
        self,
        name: str,
        columns: list[str] | None = None,
        where: str | None = None,
        limit: int | None = None,
        progress: bool | None = None,
    ) -> Any:
        """The governed rows as a ``pyarrow.Table`` (see :func:`pull`)."""
        import pyarrow as pa

        if isinstance(columns, str):
            columns = [columns]
        body = {"columns": columns, "where": where, "limit": limit}
        path = f"datasets/{urllib.parse.quote(name, safe='')}/pull"
        from .tracking import active_run

        tracked = active_run()
        # Inside a tracked run, the server logs the read as one of the run's dataset inputs.
        headers = {TRACKED_RUN_HEADER: tracked.id} if tracked is not None else {}
        with self._open("POST", path, body, headers=headers) as resp:
            version = resp.headers.get("X-DataOps-Version")
            masked = json.loads(resp.headers.get("X-DataOps-Masked") or "[]")
            try:
                reader = pa.ipc.open_stream(resp)
                batches = []
                bar = _progress(name, progress)
                for batch in reader:
                    batches.append(batch)
                    if bar is not None:
                        bar.update(batch.num_rows)
                if bar is not None:
                    bar.close()
                table = pa.Table.from_batches(batches, schema=reader.schema)
            except (pa.ArrowInvalid, OSError) as e:
                raise DataOpsClientError(
                    f"the stream of {name!r} broke off before its end ({e}); nothing was "
                    "returned, pull again",
                    code="incomplete",
                ) from None
        read = {
            "dataset": name,
            "version": version,
            "rows": table.num_rows,
            "columns": table.column_names,
            "where": where,
            "masked": masked,
        }
        self.lineage.append(read)
        return table.replace_schema_metadata({b"dataops": json.dumps(read).encode()})


def _claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the server verifies; this only reads the expiry)."""
    try:
        part = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))
    except Exception:
        return {}


def _expires_soon(token: str) -> bool:
    c = _claims(token)
    exp, iat = c.get("exp"), c.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        return False
    return exp - time.time() < (exp - iat) / 3


def _expired(err: DataOpsClientError) -> bool:
    return err.status == 401 and err.details.get("reason") == "expired"


def _from_http_error(e: urllib.error.HTTPError) -> DataOpsClientError:
    try:
        err = json.loads(e.read())["error"]
        return DataOpsClientError(
            err["message"], code=err["code"], status=e.code, details=err.get("details") or {}
        )
    except Exception:
        return DataOpsClientError(f"HTTP {e.code}: {e.reason}", status=e.code)


_default: Client | None = None


def keep_fresh(every_s: float) -> None:
    """Renew this kernel's token now and every ``every_s`` seconds while it lives (a job
    kernel's timer calls this, so plain MLflow calls never send an expired token)."""
    try:
        connect().renew()
    except DataOpsClientError as e:
        if e.status == 401:
            return  # the run has ended: nothing to renew any more
    timer = threading.Timer(every_s, keep_fresh, args=(every_s,))
    timer.daemon = True
    timer.start()


def connect(url: str | None = None, token: str | None = None, scheme: str = "DataOps") -> Client:
    """The client for this kernel's server (from the environment), or for ``url``/``token``.

    ``scheme``: ``"DataOps"`` for a DataOps kernel or run token, ``"token"`` for a Jupyter
    server's or JupyterHub's API token.

    Example::

        dops.connect()                                  # the server that started this kernel
        dops.connect("http://127.0.0.1:8888/", "<server token>", scheme="token")
    """
    global _default
    if url is None and token is None and _default is not None:
        return _default
    if url is None and token is None and os.environ.get(SCHEME_ENV) == "token":
        scheme = "token"  # a kernel of a user's server in team mode: its Hub API token
        token = os.environ.get(TOKEN_ENV) or os.environ.get(HUB_TOKEN_ENV)
    url = url or os.environ.get(URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    if not url or not token:
        raise DataOpsClientError(
            f"No DataOps server known: this kernel was not started by a Jupyter server with "
            f"jupyter_dataops enabled ({URL_ENV} / {TOKEN_ENV} are not set). "
            "Call dops.connect(url, token) to choose one.",
            code="not_configured",
        )
    _default = Client(url, token, scheme=scheme)
    return _default


PROGRESS_AFTER_S = 1.0


def _progress(name: str, enabled: bool | None) -> Any:
    # Off by default in headless job runs: nobody watches, and the bar's redraws would fill
    # the run's log.
    if enabled is False or (enabled is None and os.environ.get("DATAOPS_RUN_ID")):
        return None
    import warnings

    try:
        with warnings.catch_warnings():
            # Without ipywidgets, tqdm.auto falls back to a text bar and warns; the text bar
            # is fine.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
    except ImportError:
        return None
    # Shown only for pulls that take longer than a second.
    return tqdm(
        desc=f"pull {name}", unit=" rows", unit_scale=True, delay=PROGRESS_AFTER_S, leave=False
    )


def datasets(q: str | None = None, tag: str | None = None) -> Any:
    """The catalog as a DataFrame: name, title, owner, tags, and whether you may read it.

    Example::

        >>> dops.datasets(q="flights")
             name              title  owner  ...  access
        0  flights  NYC flights 2013  grace  ...    read
    """
    import pandas as pd

    rows = [
        {
            "name": d["name"],
            "title": d["title"],
            "owner": d["owner"],
            "tags": ", ".join(d["tags"]),
            "source": d["source_type"],
            "access": "read" if d["access"]["allowed"] else "none",
            "masked_columns": ", ".join(d["access"]["masked_columns"]),
            "description": d["description"],
        }
        for d in connect().datasets(q, tag)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "name",
            "title",
            "owner",
            "tags",
            "source",
            "access",
            "masked_columns",
            "description",
        ],
    )


def describe(name: str) -> dict[str, Any]:
    """A dataset's schema, versions, owner, and your access (masked columns, row filter).

    Example::

        >>> d = dops.describe("flights")
        >>> d["access"]["masked_columns"]
        ['tailnum']
    """
    return connect().describe(name)


def pull(
    name: str,
    columns: list[str] | None = None,
    where: str | None = None,
    limit: int | None = None,
    *,
    progress: bool | None = None,
) -> Any:
    """Read a governed dataset into a pandas DataFrame.

    The server applies your access policy before anything leaves it: you get only the rows
    your grants allow, with masked columns masked. ``where`` is a SQL condition on the
    dataset's columns (checked, never pasted into SQL). The dataset version you read is in
    ``df.attrs["dataops"]`` and in ``dops.lineage()``.
    A progress bar shows for pulls that take more than a second (``progress=False`` hides it;
    in headless job runs it is off unless ``progress=True``).

    Example::

        >>> df = dops.pull("flights", columns=["carrier", "dep_delay"],
        ...                where="dep_delay > 60")
        >>> df.attrs["dataops"]["version"]
        '3f2a9c0d1e4b5a67'
    """
    table = connect().pull_arrow(name, columns, where, limit, progress)
    meta = json.loads(table.schema.metadata[b"dataops"])
    df = table.to_pandas()
    df.attrs["dataops"] = meta
    return df


TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


def run_notebook(
    path: str,
    parameters: dict[str, Any] | None = None,
    *,
    wait: bool = True,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
) -> dict[str, Any]:
    """Run a notebook as a production job (papermill, in a fresh kernel, as you).

    Returns the run: its ``status``, ``error`` (the failing cell and traceback) and
    ``output_url`` of the executed notebook. With ``wait=False`` it returns at once, queued.

    Example::

        >>> run = dops.run_notebook("notebooks/report.ipynb", {"alpha": 0.1})
        >>> run["status"], run["output_url"]
        ('succeeded', 'http://.../dataops/api/v1/runs/3f2a.../outputs/notebook')
    """
    import time

    c = connect()
    body: dict[str, Any] = {"notebook_path": path, "parameters": parameters or {},
                            "timeout_s": timeout_s}  # fmt: skip
    if os.environ.get(SCHEME_ENV) == "token":
        # Team mode: the service holds no user's notebooks; the notebook goes with the run.
        root = os.environ.get(ROOT_ENV) or os.getcwd()
        with open(os.path.join(root, path), encoding="utf-8") as f:
            body["notebook"] = json.load(f)
    run = c.request("POST", "runs", body)
    while wait and run["status"] not in TERMINAL:
        time.sleep(poll_s)
        run = c.request("GET", f"runs/{run['id']}")
    run["output_url"] = urllib.parse.urljoin(
        c.url, f"{API_PREFIX}runs/{run['id']}/outputs/notebook"
    )
    return run


def publish(
    slug: str,
    notebook_path: str | None = None,
    *,
    job: str | None = None,
    title: str = "",
    viewers: list[str] | None = None,
    groups: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    schedule: str | None = None,
    template: str = "lab",
    live: bool = False,
    wait: bool = False,
    poll_s: float = 0.5,
) -> dict[str, Any]:
    """Publish a notebook (run as a job now) or a job definition's results as a dashboard.

    Viewers open it at ``url`` without a notebook, a kernel or a grant on its data: it shows
    what your run read. The job's next successful runs refresh it (``schedule`` a cron
    expression to refresh it on a timetable). With ``wait=True`` it returns once the first
    render is there.

    Example::

        >>> d = dops.publish("weekly-delays", "dashboards/delays.ipynb",
        ...                  groups=["ops"], parameters={"min_delay": 30})
        >>> d["url"]
        'http://127.0.0.1:8888/dataops/dashboards/weekly-delays'
    """
    import time

    c = connect()
    body: dict[str, Any] = {
        "slug": slug,
        "title": title,
        "job": job,
        "notebook_path": notebook_path,
        "viewers": {"users": viewers or [], "groups": groups or []},
        "template": template,
        "live": live,
    }
    if notebook_path is not None:
        body.update(parameters=parameters or {}, schedule=schedule)
    d = c.request("POST", "dashboards", body)
    ran, ended = d["pending_run"], None
    while wait and ran:
        if d["pending_run"] is None:
            last = d["last_render"]
            if (last is not None and last["run_id"] == ran) or d["stale"] is not None:
                break  # rendered, or its run failed (the dashboard says why)
            ended = ended or time.monotonic()
            if time.monotonic() - ended > 60:
                break  # the render is late; the view renders on its first visit anyway
        time.sleep(poll_s)
        d = c.request("GET", f"dashboards/{slug}")
    for key in ("url", "live_url"):
        if d.get(key):
            d[key] = urllib.parse.urljoin(c.url, d[key])
    return d


def lineage() -> list[dict[str, Any]]:
    """Every governed read of this kernel so far: dataset, version, rows, columns, filter."""
    return list(connect().lineage)


def status() -> dict[str, Any]:
    """Status of the DataOps server: version, your user and groups, store, counts.

    Example::

        >>> import jupyter_dataops as dops
        >>> dops.status()["user"]["name"]
        'alice'
    """
    return connect().status()


from .tracking import (  # noqa: E402  (the tracking API, re-exported for `dops.*`)
    Run,
    active_run,
    compare,
    flush,
    log_artifact,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    run,
    set_tag,
)

__all__ = [
    "Client", "DataOpsClientError", "Run", "active_run", "compare", "connect", "datasets",
    "describe", "flush", "lineage", "log_artifact", "log_figure", "log_metric", "log_metrics",
    "log_param", "log_params", "pull", "run", "run_notebook", "set_tag", "status",
]  # fmt: skip
