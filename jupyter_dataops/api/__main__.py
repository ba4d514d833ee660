"""Write the committed OpenAPI document: ``python -m jupyter_dataops.api``."""

from . import DOCUMENT, render

DOCUMENT.write_text(render())
print(f"wrote {DOCUMENT}")
