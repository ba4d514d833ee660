"""Notebook parameters: inferred from the ``parameters`` cell, validated on submission.

papermill's inspection reads the cell (names, defaults, ``# comment`` help, annotations);
types the cell does not annotate are taken from the default's literal value.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

import nbformat

from ..exceptions import InvalidRequest

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def notebook_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.read(path, as_version=4)
    except FileNotFoundError:
        raise InvalidRequest(f"notebook not found: {path}") from None
    except Exception as e:  # nbformat raises many kinds of errors for bad JSON
        raise InvalidRequest(f"{path.name} is not a readable notebook: {e}") from None


def infer_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"type", "default", "help"}}`` from the notebook's parameters cell."""
    import tempfile

    from papermill.inspection import inspect_notebook

    nb = read_notebook(path)
    try:
        if nb.metadata.get("kernelspec"):
            found = inspect_notebook(str(path))
        else:  # papermill needs a kernel name to pick the language's parser
            nb.metadata["kernelspec"] = {
                "name": "python3",
                "language": "python",
                "display_name": "Python 3",
            }
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / path.name
                nbformat.write(nb, copy)
                found = inspect_notebook(str(copy))
    except Exception as e:
        raise InvalidRequest(f"cannot read the parameters cell of {path.name}: {e}") from None
    out: dict[str, dict[str, Any]] = {}
    for name, p in found.items():
        try:
            default = ast.literal_eval(p["default"])
        except (ValueError, SyntaxError):
            default = None  # an expression (e.g. a function call): no literal default
        declared = p.get("inferred_type_name")
        literal = type(default).__name__
        type_name = declared if declared in _TYPES else (literal if literal in _TYPES else "any")
        out[name] = {"type": type_name, "default": default, "help": p.get("help") or ""}
    return out


def validate_parameters(
    declared: dict[str, dict[str, Any]], given: dict[str, Any]
) -> dict[str, Any]:
    """Check names and types; returns the values coerced (an int for a float is fine)."""
    out = {}
    for name, value in given.items():
        spec = declared.get(name)
        if spec is None:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidRequest(
                f"unknown parameter {name!r}; the notebook declares: {known}",
                details={"parameter": name},
            )
        out[name] = _coerce(name, spec["type"], value)
    return out


def _coerce(name: str, type_name: str, value: Any) -> Any:
    if type_name == "any" or value is None:
        return value
    want = _TYPES[type_name]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is int and isinstance(value, bool):
        pass  # True is an int in Python, not here
    elif isinstance(value, want):
        return value
    raise InvalidRequest(
        f"parameter {name!r} must be {type_name}, got {type(value).__name__} {value!r}",
        details={"parameter": name},
    )


def parse_cli_value(text: str) -> Any:
    """``-p alpha 0.1`` as papermill's CLI reads it: a Python literal, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
