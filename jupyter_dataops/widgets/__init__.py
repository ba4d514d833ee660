"""Dashboard widgets, composed from standard ipywidgets only (no JavaScript of their own), so
they render alike in JupyterLab, in Voila's live view and, with their saved state, in a
published view.

Everything they read or run goes through the kernel's DataOps client, as the kernel's user:
governed pulls, the catalog, job runs.

Example::

    from jupyter_dataops import widgets as dw
    dw.DatasetPicker()                                  # the catalog, with a preview
    dw.ParameterForm("delays.ipynb")                    # a form from its parameters cell
    dw.FilterControls("flights", category="carrier", date="time_hour",
                      columns=["carrier", "origin", "dep_delay", "time_hour"],
                      value="dep_delay")                # a table and a chart, filtered
"""

from __future__ import annotations

import html
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import date as Date
from datetime import datetime
from typing import Any

import ipywidgets as w

__all__ = ["DatasetPicker", "FilterControls", "MetricChart", "ParameterForm", "RunsTable"]

TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


def _client() -> Any:
    from ..client import connect

    return connect()


def _error(e: Exception) -> str:
    return f'<div class="dops-widget-error" style="color:#b00020">{html.escape(str(e))}</div>'


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None, limit: int = 50) -> str:
    if not rows:
        return "<em>no rows</em>"
    cols = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>"
        for r in rows[:limit]
    )
    return f'<table class="dops-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class DatasetPicker(w.VBox):
    """The datasets you may read, and a preview of the chosen one (your rows, masked as the
    policy masks them). ``value``: the chosen dataset's name."""

    def __init__(self, q: str | None = None, preview_rows: int = 10, **kwargs: Any) -> None:
        self.preview_rows = preview_rows
        self.dropdown = w.Dropdown(description="Dataset", options=[])
        self.info = w.HTML()
        self.preview = w.HTML()
        super().__init__([self.dropdown, self.info, self.preview], **kwargs)
        try:
            found = _client().datasets(q)
        except Exception as e:
            self.info.value = _error(e)
            return
        readable = [d for d in found if d["access"]["allowed"]]
        self.datasets = {d["name"]: d for d in readable}
        self.dropdown.options = [(f"{d['title'] or d['name']} ({d['name']})", d["name"])
                                 for d in readable]  # fmt: skip
        if readable:
            self.dropdown.value = readable[0]["name"]
        self.dropdown.observe(lambda _: self.show(), names="value")
        self.show()

    @property
    def value(self) -> str | None:
        return self.dropdown.value

    def show(self) -> None:
        name = self.dropdown.value
        if not name:
            self.preview.value = "<em>no dataset you may read</em>"
            return
        d = self.datasets[name]
        masked = ", ".join(d["access"]["masked_columns"]) or "none"
        self.info.value = (
            f"<p>{html.escape(d['description'])}</p><p>Owner {html.escape(d['owner'])} · "
            f"masked for you: {html.escape(masked)}</p>"
        )
        try:
            page = _client().request(
                "GET", f"datasets/{urllib.parse.quote(name, safe='')}/preview",
                params={"limit": self.preview_rows},
            )  # fmt: skip
        except Exception as e:
            self.preview.value = _error(e)
            return
        self.preview.value = _table(page["rows"], [c["name"] for c in page["columns"]])


def _field(p: dict[str, Any]) -> w.Widget:
    kind, default, label = p["type"], p["default"], p["name"]
    style = {"description_width": "initial"}
    if kind == "bool":
        return w.Checkbox(value=bool(default), description=label, style=style)
    if kind == "int":
        return w.IntText(value=int(default or 0), description=label, style=style)
    if kind == "float":
        return w.FloatText(value=float(default or 0), description=label, style=style)
    if kind in ("list", "dict", "any"):
        return w.Textarea(value=json.dumps(default), description=label, style=style)
    return w.Text(value="" if default is None else str(default), description=label, style=style)


class ParameterForm(w.VBox):
    """A form from a notebook's ``parameters`` cell; *Run* submits a production run of the
    notebook with the values, as you, and shows its progress (``cell i of n``) to its end."""

    def __init__(self, notebook_path: str, poll_s: float = 0.5, **kwargs: Any) -> None:
        self.notebook_path = notebook_path
        self.poll_s = poll_s
        self.fields: dict[str, w.Widget] = {}
        self.button = w.Button(description="Run", button_style="primary", icon="play")
        self.progress = w.IntProgress(
            value=0, min=0, max=1, description="", layout={"width": "50%"}
        )
        self.status = w.HTML()
        self.run: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        try:
            found = _client().request("GET", "notebooks/parameters",
                                      params={"path": notebook_path})  # fmt: skip
            self.parameters = found["parameters"]
        except Exception as e:
            self.parameters = []
            self.status.value = _error(e)
        for p in self.parameters:
            self.fields[p["name"]] = _field(p)
            if p["help"]:
                self.fields[p["name"]].tooltip = p["help"]
        self.button.on_click(lambda _: self.submit())
        super().__init__([*self.fields.values(), self.button, self.progress, self.status], **kwargs)

    def values(self) -> dict[str, Any]:
        out = {}
        for p in self.parameters:
            value = self.fields[p["name"]].value
            if p["type"] in ("list", "dict", "any"):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # the server names the parameter that is wrong
            out[p["name"]] = value
        return out

    def submit(self) -> dict[str, Any] | None:
        """Submit the run (what *Run* does); its progress follows in the background."""
        try:
            self.run = _client().request(
                "POST", "runs", {"notebook_path": self.notebook_path, "parameters": self.values()}
            )
        except Exception as e:
            self.status.value = _error(e)
            return None
        self.button.disabled = True
        self._show(self.run)
        self._thread = threading.Thread(target=self._follow, daemon=True, name="dops-form")
        self._thread.start()
        return self.run

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the submitted run has ended (or ``timeout``); the run."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.run

    def _follow(self) -> None:
        assert self.run is not None
        try:
            while self.run["status"] not in TERMINAL:
                time.sleep(self.poll_s)
                self.run = _client().request("GET", f"runs/{self.run['id']}")
                self._show(self.run)
        except Exception as e:
            self.status.value = _error(e)
        finally:
            self.button.disabled = False

    def _show(self, run: dict[str, Any]) -> None:
        prog = run.get("progress") or {}
        self.progress.max = max(1, int(prog.get("of") or 1))
        self.progress.value = int(prog.get("cell") or 0)
        state = run["status"]
        if state == "succeeded":
            self.progress.value = self.progress.max
        self.progress.bar_style = {"succeeded": "success", "failed": "danger",
                                   "timed_out": "danger"}.get(state, "")  # fmt: skip
        error = (run.get("error") or {}).get("message")
        self.status.value = (
            f"Run <code>{html.escape(run['id'][:8])}</code>: {html.escape(state)}"
            + (f" (cell {prog.get('cell')} of {prog.get('of')})" if state == "running" else "")
            + (f" — {html.escape(error)}" if error else "")
        )


class RunsTable(w.VBox):
    """Your recent runs (of one job, or all), newest first; *Refresh* reads them again."""

    def __init__(self, job: str | None = None, limit: int = 20, **kwargs: Any) -> None:
        self.job, self.limit = job, limit
        self.table = w.HTML()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.refresh_button, self.table], **kwargs)
        self.refresh()

    def refresh(self) -> list[dict[str, Any]]:
        try:
            runs = _client().request("GET", "runs", params={"job": self.job, "limit": self.limit})[
                "runs"
            ]
        except Exception as e:
            self.table.value = _error(e)
            return []
        rows = [
            {"run": r["id"][:8], "status": r["status"], "notebook": r["notebook_path"],
             "job": r["job_name"] or "-", "parameters": json.dumps(r["parameters"]),
             "finished": (r["finished_at"] or "-")[:19].replace("T", " ")}
            for r in runs
        ]  # fmt: skip
        self.table.value = _table(rows)
        return runs


def _draw(out: w.Output, points: list[tuple[Any, float]], title: str, kind: str) -> None:
    """A PNG chart as the Output widget's own outputs (in its state, not in the cell's): the
    live view and, from the saved state, the published view show it."""
    import base64
    import io

    import matplotlib

    matplotlib.use("agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if kind == "bar":
        ax.bar([str(x) for x in xs], ys)
    else:
        ax.plot(xs, ys, marker="o")
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    png = base64.b64encode(buf.getvalue()).decode()
    out.outputs = (
        {"output_type": "display_data", "metadata": {},
         "data": {"image/png": png, "text/plain": f"<chart: {title}>"}},
    )  # fmt: skip


class MetricChart(w.VBox):
    """A metric over steps (or time), as a chart. ``points``: ``[(step, value), ...]`` or a
    callable returning them (called again by *Refresh*).

    An experiment's metric comes from experiment tracking (MLflow, issue 11):
    :meth:`from_experiment` asks it; until tracking is there it says so."""

    def __init__(
        self,
        points: list[tuple[Any, float]] | Callable[[], list[tuple[Any, float]]],
        title: str = "",
        **kwargs: Any,
    ) -> None:
        self._points = points
        self.title = title
        self.out = w.Output()
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.refresh_button, self.out], **kwargs)
        self.refresh()

    def refresh(self) -> None:
        points = self._points() if callable(self._points) else self._points
        _draw(self.out, list(points), self.title, "line")

    @classmethod
    def from_experiment(cls, experiment: str, metric: str, **kwargs: Any) -> MetricChart:
        from .. import client

        history = getattr(client, "metric_history", None)
        if history is None:
            raise NotImplementedError(
                "experiment tracking is not in this version of jupyter-dataops; pass points"
            )
        return cls(lambda: history(experiment, metric), title=f"{experiment}: {metric}", **kwargs)


def _literal(v: Any) -> str:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


class FilterControls(w.VBox):
    """Filters (a category such as a carrier, a date range) driving a table and a chart of a
    governed dataset: each change pulls again, as you, with the filter as ``where``.

    ``category``: a column whose values become a dropdown ("all" first); ``date``: a date or
    timestamp column, bounded by two date pickers; ``value``: the numeric column the chart
    shows (its mean per category, or per day without a category); ``where``: a filter always
    applied (keep pulls small).
    """

    def __init__(
        self,
        dataset: str,
        *,
        category: str | None = None,
        date: str | None = None,
        value: str | None = None,
        columns: list[str] | None = None,
        where: str | None = None,
        start: Date | None = None,
        end: Date | None = None,
        rows: int = 10,
        **kwargs: Any,
    ) -> None:
        self.dataset, self.category, self.date_column, self.value_column = (
            dataset, category, date, value)  # fmt: skip
        self.columns, self.rows, self.base_where = columns, rows, where
        controls: list[w.Widget] = []
        self.choice = w.Dropdown(description=category or "", options=["all"])
        if category:
            try:
                values = _client().pull_arrow(dataset, [category], where)
                options = sorted({v for v in values.column(category).to_pylist() if v is not None})
            except Exception as e:
                options = []
                self.error = _error(e)
            self.choice.options = ["all", *options]
            self.choice.value = "all"
            controls.append(self.choice)
        self.start = w.DatePicker(description="from", value=start)
        self.end = w.DatePicker(description="to", value=end)
        if date:
            controls += [self.start, self.end]
        self.summary = w.HTML()
        self.table = w.HTML()
        self.chart = w.Output()
        super().__init__([w.HBox(controls), self.summary, self.table, self.chart], **kwargs)
        for c in (self.choice, self.start, self.end):
            c.observe(lambda _: self.update(), names="value")
        self.update()

    def where(self) -> str | None:
        """The filter the controls make (checked by the server, as any user filter is)."""
        parts = [f"({self.base_where})"] if self.base_where else []
        if self.category and self.choice.value not in (None, "all"):
            parts.append(f"{self.category} = {_literal(self.choice.value)}")
        if self.date_column and self.start.value:
            parts.append(f"{self.date_column} >= {_literal(self.start.value.isoformat())}")
        if self.date_column and self.end.value:
            nxt = self.end.value.toordinal() + 1
            day_after = datetime.fromordinal(nxt).date().isoformat()
            parts.append(f"{self.date_column} < {_literal(day_after)}")
        return " AND ".join(parts) or None

    def update(self) -> Any:
        """Pull with the current filter and redraw; the DataFrame."""
        try:
            from ..client import pull

            df = pull(self.dataset, columns=self.columns, where=self.where())
        except Exception as e:
            self.summary.value = _error(e)
            self.table.value = ""
            return None
        meta = df.attrs.get("dataops", {})
        self.summary.value = (
            f"<b>{len(df):,}</b> rows of {html.escape(self.dataset)} "
            f"(version {html.escape(str(meta.get('version', '?'))[:12])})"
            + (f" where <code>{html.escape(self.where() or '')}</code>" if self.where() else "")
        )
        self.table.value = df.head(self.rows).to_html(index=False, classes="dops-table")
        if self.value_column and len(df):
            if self.category and self.choice.value in (None, "all"):
                series = df.groupby(self.category)[self.value_column].mean().sort_values()
                _draw(self.chart, list(series.items())[-15:],
                      f"mean {self.value_column} by {self.category}", "bar")  # fmt: skip
            elif self.date_column:
                import pandas as pd

                days = pd.to_datetime(df[self.date_column]).dt.date
                series = df.groupby(days)[self.value_column].mean()
                _draw(self.chart, list(series.items()), f"mean {self.value_column} per day",
                      "line")  # fmt: skip
        else:
            self.chart.outputs = ()
        return df
