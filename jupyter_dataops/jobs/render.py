"""A run's extra output formats: HTML (nbconvert) and PDF (that HTML printed by Chromium).

PDF needs a renderer on the machine: Python Playwright and a Chromium-family browser
(``$DATAOPS_PDF_BROWSER``, else ``chromium``, ``chromium-browser``, ``google-chrome`` on the
PATH). Nothing is downloaded: without both, :func:`pdf_renderer` says why, and runs asking
for ``pdf`` are refused at submission.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

BROWSER_ENV = "DATAOPS_PDF_BROWSER"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and nothing that reaches the network or writes a profile we keep.
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pdf_renderer() -> tuple[str | None, str]:
    """(browser executable, "") when PDF output can be rendered here, else (None, why not)."""
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return None, "PDF output needs the Python package playwright on the server"
    configured = os.environ.get(BROWSER_ENV, "")
    if configured:
        if os.access(configured, os.X_OK):
            return configured, ""
        return None, f"${BROWSER_ENV} is {configured!r}, which is not an executable"
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found, ""
    return None, (
        "PDF output needs a Chromium browser on the server (install chromium, or set "
        f"${BROWSER_ENV})"
    )


def html(notebook: str) -> str:
    """Write ``<notebook>.html`` next to the notebook (JupyterLab's look); return its path."""
    out = Path(notebook).with_suffix(".html")
    out.write_text(_html_body(notebook), encoding="utf-8")
    return str(out)


def _html_body(notebook: str) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(notebook, as_version=4)
    )
    return str(body)


def pdf(notebook: str, html_path: str | None = None) -> str:
    """Print the notebook's HTML to ``<notebook>.pdf`` with headless Chromium; its path."""
    browser, why = pdf_renderer()
    if browser is None:
        raise RuntimeError(why)
    from playwright.sync_api import sync_playwright

    out = Path(notebook).with_suffix(".pdf")
    source = Path(html_path) if html_path else out.with_name(out.stem + ".pdf-source.html")
    if not html_path:
        source.write_text(_html_body(notebook), encoding="utf-8")
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(
                executable_path=browser,
                args=BROWSER_ARGS,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
            try:
                page = b.new_page()
                page.emulate_media(media="print")
                page.goto(source.resolve().as_uri(), wait_until="load")
                page.pdf(path=str(out), print_background=True, format="A4")
            finally:
                b.close()
    finally:
        if not html_path:
            source.unlink(missing_ok=True)
    return str(out)
