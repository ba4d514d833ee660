"""Decisions: may this user read this dataset, which rows, and which columns masked.

Deny by default: without a grant that names the user (or one of their groups) and the
dataset (or one of its tags), nothing is readable. Several matching grants add up: the user
sees the union of their row filters, and a grant without a filter means every row. A mask
applies to everyone it does not exempt; the first mask in the file that covers a column wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlglot import exp

from ..config import ColumnMeta, Mask, WorkspaceConfig
from ..exceptions import Forbidden
from ..identity import Principal
from .filters import FilterError, render_row_filter


@dataclass(frozen=True)
class DatasetFacts:
    """What a decision needs to know about a dataset."""

    name: str
    tags: Sequence[str]
    columns: Sequence[str] | None  # None: not observed yet (row filters are not checked)
    column_meta: Mapping[str, ColumnMeta] = field(default_factory=dict)
    owner: str = ""


@dataclass
class Decision:
    allowed: bool
    reason: str
    grants: list[int] = field(default_factory=list)
    row_filter: exp.Expression | None = None
    row_filter_text: str | None = None
    masks: dict[str, Mask] = field(default_factory=dict)

    def require(self) -> None:
        if not self.allowed:
            raise Forbidden(self.reason)


def user_attributes(config: WorkspaceConfig, user: Principal) -> dict[str, Any]:
    spec = config.users.get(user.name)
    attrs: dict[str, Any] = dict(spec.attributes) if spec else {}
    attrs["name"] = user.name
    attrs["groups"] = list(user.groups)
    return attrs


def _covers(names: Sequence[str], tags: Sequence[str], ds: DatasetFacts) -> bool:
    return ds.name in names or bool(set(tags) & set(ds.tags))


def decide(config: WorkspaceConfig, user: Principal, ds: DatasetFacts) -> Decision:
    groups = set(user.groups)
    matching = [
        i for i, g in enumerate(config.grants)
        if (user.name in g.users or groups & set(g.groups)) and _covers(g.datasets, g.tags, ds)
    ]  # fmt: skip
    if not matching:
        holders = sorted(
            {f"group {x}" for g in config.grants if _covers(g.datasets, g.tags, ds)
             for x in g.groups}
            | {f"user {x}" for g in config.grants if _covers(g.datasets, g.tags, ds)
               for x in g.users}
        )  # fmt: skip
        who = f"user {user.name!r}" + (f" (groups: {', '.join(sorted(groups))})" if groups else "")
        hint = f"; it is granted to {', '.join(holders)}" if holders else "; no grant covers it yet"
        owner = f", or ask its owner {ds.owner}" if ds.owner else ""
        return Decision(
            allowed=False,
            reason=f"{who} has no grant to read dataset {ds.name!r}{hint}. Add a grant for "
            f"this dataset or one of its tags ({', '.join(ds.tags) or 'none'}) to "
            f"dataops.yaml{owner}.",
        )
    filters = [config.grants[i].row_filter for i in matching]
    row_filter: exp.Expression | None = None
    text: str | None = None
    if all(f is not None for f in filters):
        attrs = user_attributes(config, user)
        try:
            parts = [render_row_filter(f, attrs, ds.columns) for f in filters if f is not None]
        except FilterError as e:
            # A policy that cannot apply fails closed, and says whose fix it is.
            return Decision(
                allowed=False,
                reason=f"the row filter of a grant for {ds.name!r} does not fit the dataset "
                f"({e.message}); nothing is shown until an admin fixes dataops.yaml",
            )
        row_filter = (
            parts[0] if len(parts) == 1 else cast(exp.Expression, exp.or_(*map(exp.paren, parts)))
        )
        text = " OR ".join(f"({f})" for f in filters if f is not None)
    masks: dict[str, Mask] = {}
    for m in config.masks:
        if (m.datasets or m.tags) and not _covers(m.datasets, m.tags, ds):
            continue
        if user.name in m.exempt_users or groups & set(m.exempt_groups):
            continue
        for col in ds.columns or ():
            meta = ds.column_meta.get(col)
            hit = col in m.columns or bool(
                meta and set(meta.classification) & set(m.classifications)
            )
            if hit and col not in masks:
                masks[col] = m
    return Decision(
        True,
        "granted by "
        + "; ".join(
            f"grant #{i + 1}"
            + (f" ({config.grants[i].description})" if config.grants[i].description else "")
            for i in matching
        ),
        matching,
        row_filter,
        text,
        masks,
    )
