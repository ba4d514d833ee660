"""The published view: a run's executed notebook rendered once, code hidden, widgets drawn.

nbconvert's HTML exporter (the ``lab`` template by default, which Voila builds on) renders the
output notebook with its saved ipywidgets state. The widget manager (``@jupyter-widgets/
html-manager``) and require.js are npm packages that the front end's build copies into
``labextension/vendor/`` (see labextension/scripts/vendor.js): the page loads them from this
server, never from a CDN, so a view draws its widgets with no network but the server's.

The page is rendered without its header; :func:`compose` adds the header of each request (who
may follow which link, whether the view is stale) to the cached page, which costs a string
insertion, never a render.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Relative to the published view's URL (…/dataops/dashboards/<slug>): the assets route.
ASSETS_URL = "_static/"
VENDOR_DIR = Path(__file__).resolve().parent.parent / "labextension" / "vendor"
WIDGET_MANAGER = "html-manager/embed-amd.js"
REQUIRE_JS = "requirejs/require.js"
HIDE_TAGS = {"remove-cell", "remove_cell", "dashboard-hide"}
PREVIEW_CHARS = 280

# What every view leaves out: MathJax and Mermaid come from CDNs, and a view loads nothing
# from anywhere but this server; empty cells (code hidden, no output) take no room.
_OVERRIDES = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}{{ super() }}
<style>
  .jp-Cell.jp-mod-noOutputs.jp-mod-noInput { display: none; }
</style>
{%- endblock extra_css -%}
"""


class AssetsMissing(RuntimeError):
    """The vendored widget manager is not there (the front end was never built)."""


def assets_dir() -> Path:
    if not (VENDOR_DIR / WIDGET_MANAGER).is_file() or not (VENDOR_DIR / REQUIRE_JS).is_file():
        raise AssetsMissing(
            f"the widget manager is missing from {VENDOR_DIR}: build the front end "
            "(`jlpm build` in labextension/, or `make lab`)"
        )
    return VENDOR_DIR


def installed_templates() -> list[str]:
    """The nbconvert HTML templates installed here (those with an ``index.html.j2``)."""
    from jupyter_core.paths import jupyter_path

    names = set()
    for base in jupyter_path("nbconvert", "templates"):
        p = Path(base)
        if p.is_dir():
            names |= {d.name for d in p.iterdir() if (d / "index.html.j2").is_file()}
    return sorted(names)


@dataclass
class Rendered:
    html: str
    thumbnail: bytes | None  # the first PNG the notebook shows
    preview: str  # the first words of its text, for the index


def render_view(notebook_path: Path, template: str = "lab", title: str = "") -> Rendered:
    """The published view of an executed notebook (blocking: 50-300 ms of CPU)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    nb = nbformat.read(notebook_path, as_version=4)
    nb.cells = [c for c in nb.cells if not HIDE_TAGS & set(c.get("metadata", {}).get("tags", []))]
    c = Config()
    c.HTMLExporter.exclude_input = True
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(
        config=c,
        template_name=template,
        extra_loaders=[jinja2.DictLoader({"dataops-dashboard.html.j2": _OVERRIDES})],
        template_file="dataops-dashboard.html.j2",
        widget_renderer_url=ASSETS_URL + WIDGET_MANAGER,
        require_js_url=ASSETS_URL + REQUIRE_JS,
    )
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title or "Dashboard"}}
    )
    return Rendered(str(body), _first_png(nb), _preview(nb))


def _first_png(nb: Any) -> bytes | None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data") or {}
            if "image/png" in data:
                raw = data["image/png"]
                try:
                    return base64.b64decode(raw if isinstance(raw, str) else "".join(raw))
                except ValueError:
                    continue
    return None


def _preview(nb: Any) -> str:
    words: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = re.sub(r"[#*_`>\[\]()|-]+", " ", cell.source)
            words += text.split()
        if sum(len(w) + 1 for w in words) >= PREVIEW_CHARS:
            break
    return " ".join(words)[:PREVIEW_CHARS]


# -- the header of each request --------------------------------------------------------------


@dataclass
class Header:
    title: str
    finished_at: datetime | None
    parameters: dict[str, Any]
    datasets: list[tuple[str, str | None]]  # (name, version) read by the run
    run_id: str
    run_url: str | None  # for users who may see the run
    notebook_url: str | None
    experiment_url: str | None
    stale: Any | None  # models.StaleInfo
    history: list[tuple[str, datetime | None]]  # (run id, finished at), newest first
    latest: bool  # this is the current view (not ?run=...)
    live_url: str | None


def _when(d: datetime | None) -> str:
    return d.strftime("%Y-%m-%d %H:%M UTC") if d else "-"


def header_html(h: Header) -> str:
    e = html.escape
    params = ", ".join(f"{e(k)}={e(repr(v))}" for k, v in sorted(h.parameters.items()))
    data = ", ".join(f"{e(name)}@{e((v or '?')[:12])}" for name, v in sorted(set(h.datasets)))
    parts = [
        '<header class="dops-dashboard-header" data-run-id="' + e(h.run_id) + '">',
        STYLE,
        f'<h1 class="dops-h-title">{e(h.title)}</h1>',
        '<p class="dops-h-meta">',
        f'Ran <time datetime="{e(h.finished_at.isoformat()) if h.finished_at else ""}">'
        f"{e(_when(h.finished_at))}</time>",
        f' · parameters: <span class="dops-h-params">{params or "none"}</span>',
        f' · data: <span class="dops-h-data">{data or "none recorded"}</span>',
        "</p>",
    ]
    links = []
    if h.run_url:
        links.append(f'<a href="{e(h.run_url)}">run {e(h.run_id[:8])}</a>')
    if h.notebook_url:
        links.append(f'<a href="{e(h.notebook_url)}">executed notebook</a>')
    if h.experiment_url:
        links.append(f'<a href="{e(h.experiment_url)}">experiment</a>')
    if h.live_url:
        links.append(f'<a href="{e(h.live_url)}">live view</a>')
    if len(h.history) > 1 or not h.latest:
        runs = " ".join(
            f'<a href="?run={e(rid)}"{" aria-current=page" if rid == h.run_id else ""}>'
            f"{e(_when(at))}</a>"
            for rid, at in h.history
        )
        current = "" if h.latest else ' · <a href="?">latest</a>'
        links.append(f'<span class="dops-h-history">earlier: {runs}{current}</span>')
    if links:
        parts.append('<p class="dops-h-links">' + " · ".join(links) + "</p>")
    if not h.latest:
        parts.append(
            '<p class="dops-h-old" role="note">An earlier render: the run of '
            f"{e(_when(h.finished_at))}.</p>"
        )
    if h.stale is not None:
        parts.append(
            '<p class="dops-h-stale" role="alert"><strong>Stale</strong> since '
            f"{e(_when(h.stale.since))}: {h.stale.failed_runs} run(s) failed since this one "
            f"(latest {e(h.stale.run_id[:8])}): {e(h.stale.reason)}</p>"
        )
    parts.append("</header>")
    return "\n".join(parts)


STYLE = """<style>
.dops-dashboard-header { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  padding: 12px 24px; border-bottom: 1px solid var(--jp-border-color2, #e0e0e0);
  background: var(--jp-layout-color1, #fafafa); color: var(--jp-ui-font-color1, #222); }
.dops-h-title { font-size: 1.4em; margin: 0 0 4px 0; }
.dops-h-meta, .dops-h-links { margin: 2px 0; font-size: 0.9em;
  color: var(--jp-ui-font-color2, #555); }
.dops-h-stale { margin: 6px 0 0 0; padding: 6px 10px; border-radius: 4px;
  background: var(--jp-warn-color3, #fff3cd); color: var(--jp-warn-color0, #7a4b00); }
.dops-h-old { margin: 6px 0 0 0; font-style: italic; }
</style>"""


def compose(page: str, header: str) -> str:
    """The cached page with ``header`` as the first thing in its body."""
    i = page.find("<body")
    j = page.find(">", i) if i >= 0 else -1
    if j < 0:
        return header + page
    return page[: j + 1] + "\n" + header + page[j + 1 :]
