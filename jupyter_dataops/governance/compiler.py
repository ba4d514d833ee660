"""Compile a decision and a request into one SQL statement for the engine that holds the data.

    SELECT <requested columns> FROM (
        SELECT <each column, masked where the policy says> FROM <source> WHERE <row filter>
    ) AS governed WHERE <user filter> LIMIT <n>

Masks sit in the inner projection and the row filter in its WHERE, so the user's filter sees
only what the user may see: it cannot probe a masked value or a hidden row. Where the engine's
planner could still run the user's filter on hidden rows first (PostgreSQL), the inner SELECT
becomes a ``security_barrier`` view (:class:`GovernedSelect`). The statement is
built as a sqlglot tree and rendered in the engine's dialect (DuckDB for files, the source's
own for SQL databases); every identifier is quoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from ..config import Mask
from .policy import Decision

# Column kinds, from the Arrow type recorded with each dataset version.
STRING, INTEGER, FLOAT, DECIMAL, BOOLEAN, TEMPORAL, OTHER = (
    "string", "integer", "float", "decimal", "boolean", "temporal", "other",
)  # fmt: skip

_SQL_TYPE = {
    STRING: "VARCHAR", INTEGER: "BIGINT", FLOAT: "DOUBLE", DECIMAL: "DOUBLE",
    BOOLEAN: "BOOLEAN", TEMPORAL: "TIMESTAMP", OTHER: "VARCHAR",
}  # fmt: skip
REDACTED = "[REDACTED]"
PARTIAL_PREFIX = "****"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _null_of(kind: str) -> exp.Expression:
    return exp.cast(exp.null(), _SQL_TYPE.get(kind, "VARCHAR"))


def _as_text(e: exp.Expression, kind: str) -> exp.Expression:
    return e if kind == STRING else exp.cast(e, "VARCHAR")


def mask_expression(col: Column, mask: Mask, salt: str, dialect: str) -> exp.Expression:
    c = _col(col.name)
    fn = mask.function
    if fn == "null" or (fn == "redact" and col.kind != STRING):
        return _null_of(col.kind)
    if fn == "redact":
        return exp.case().when(c.is_(exp.null()), exp.null()).else_(exp.Literal.string(REDACTED))
    if fn == "hash":
        digest = exp.MD5(
            this=exp.DPipe(
                this=exp.Literal.string(salt), expression=_as_text(c, col.kind), safe=True
            )
        )
        return exp.case().when(c.is_(exp.null()), exp.null()).else_(digest)
    if fn == "partial":
        text = _as_text(c, col.kind)
        keep = exp.Literal.number(mask.keep)
        shown = exp.DPipe(
            this=exp.Literal.string(PARTIAL_PREFIX),
            expression=exp.Right(this=text, expression=keep),
            safe=True,
        )
        return (
            exp.case()
            .when(c.is_(exp.null()), exp.null())
            .when(exp.GT(this=exp.Length(this=text), expression=keep), shown)
            .else_(exp.Literal.string(PARTIAL_PREFIX))
        )
    if fn == "round":
        if col.kind not in (INTEGER, FLOAT, DECIMAL):
            return _null_of(col.kind)  # nothing sensible to round: hide it
        digits = exp.Literal.number(mask.digits)
        if dialect == "postgres" and col.kind == FLOAT:
            # PostgreSQL rounds to a number of digits only for NUMERIC.
            rounded = exp.Round(this=exp.cast(c, "DECIMAL"), decimals=digits)
            return exp.cast(rounded, "DOUBLE")
        return exp.Round(this=c, decimals=digits)
    raise ValueError(f"unknown mask function {fn!r}")


def _try_casts(tree: exp.Expression) -> exp.Expression:
    # A failed CAST would raise an engine error, possibly quoting a value from a row the
    # user may not see (filters can be evaluated before the row filter). TRY_CAST gives NULL.
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
            return exp.TryCast(this=node.this, to=node.args["to"])
        return node

    return tree.transform(swap)


def _quote_columns(tree: exp.Expression) -> exp.Expression:
    def quote(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            return _col(node.name)
        return node

    return tree.transform(quote)


GOVERNED = "governed"


@dataclass(frozen=True)
class GovernedSelect:
    """A compiled read in two parts: the governed relation (masks in its projection, the row
    filter in its WHERE) and the user's read of it (columns, filter, limit).

    Kept apart because a planner may evaluate the user's filter before the row filter, on
    rows the user may not see: an error it raises there (a division by zero) would tell a
    hidden row from none. An engine that does so reads the governed relation through a barrier
    (PostgreSQL: a ``security_barrier`` view, see catalog/sources.py).
    """

    governed: exp.Select
    read: exp.Select  # FROM the governed relation, aliased GOVERNED
    dialect: str

    def sql(self) -> str:
        """One statement: the governed relation as a subquery (DuckDB evaluates the row
        filter first; tests/server/test_security_barrier.py checks it)."""
        return self._over(exp.Subquery(this=self.governed.copy(), alias=_alias()))

    def governed_sql(self) -> str:
        return self.governed.sql(dialect=self.dialect, comments=False)

    def read_sql(self, relation: exp.Table) -> str:
        """The user's read of ``relation`` (a view made of :meth:`governed_sql`)."""
        aliased = relation.copy()
        aliased.set("alias", _alias())
        return self._over(aliased)

    def fenced_sql(self) -> str:
        """One statement in which no condition crosses into the governed subquery: PostgreSQL
        never pushes a condition into (nor pulls up) a subquery with an OFFSET. Every user
        filter then runs on governed rows only, and uses no index."""
        fenced = self.governed.copy().offset(0)
        return self._over(exp.Subquery(this=fenced, alias=_alias()))

    def _over(self, relation: exp.Expression) -> str:
        read = self.read.copy()
        read.set("from_", exp.From(this=relation))
        return read.sql(dialect=self.dialect, comments=False)

    def __str__(self) -> str:
        return self.sql()


def _alias() -> exp.TableAlias:
    return exp.TableAlias(this=exp.to_identifier(GOVERNED))


def compile_read(
    source: exp.Expression,
    schema: Sequence[Column],
    decision: Decision,
    columns: Sequence[str],
    where: exp.Expression | None,
    limit: int | None,
    dialect: str,
    salt: str,
) -> GovernedSelect:
    """The governed read; ``columns`` and ``where`` must already be validated."""
    inner_proj = []
    for col in schema:
        mask = decision.masks.get(col.name)
        value = mask_expression(col, mask, salt, dialect) if mask else _col(col.name)
        inner_proj.append(exp.alias_(value, exp.to_identifier(col.name, quoted=True)))
    inner = exp.select(*inner_proj).from_(source)
    if decision.row_filter is not None:
        inner = inner.where(_try_casts(_quote_columns(decision.row_filter.copy())))
    outer = exp.select(*[_col(c) for c in columns]).from_(exp.to_table(GOVERNED))
    if where is not None:
        outer = outer.where(_try_casts(_quote_columns(where.copy())))
    if limit is not None:
        outer = outer.limit(limit)
    return GovernedSelect(inner, outer, dialect)


def compile_select(
    source: exp.Expression,
    schema: Sequence[Column],
    decision: Decision,
    columns: Sequence[str],
    where: exp.Expression | None,
    limit: int | None,
    dialect: str,
    salt: str,
) -> str:
    """The governed SELECT as one statement (see :func:`compile_read`)."""
    return compile_read(source, schema, decision, columns, where, limit, dialect, salt).sql()
