"""Filters: user ``where=`` text and policy row filters, parsed and checked with sqlglot.

A filter never reaches SQL as text. It is parsed into an expression tree, every node is
checked against a small allow-list (comparisons, boolean logic, arithmetic, IN, BETWEEN,
LIKE, IS NULL, a few scalar functions), every column against the dataset's schema, and SQL is
generated back from the tree. Subqueries, unknown functions, statements, comments and
qualified names are rejected with the position of the offending part.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from ..exceptions import InvalidRequest

MAX_FILTER_LENGTH = 10_000

_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.In, exp.Between, exp.Is, exp.Like, exp.ILike, exp.NullSafeEQ, exp.NullSafeNEQ,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe,
    exp.Cast, exp.TryCast, exp.DataType,
    # scalar functions
    exp.Lower, exp.Upper, exp.Abs, exp.Round, exp.Length, exp.Coalesce, exp.Trim,
    exp.Substring, exp.Year, exp.Month, exp.Day, exp.Floor, exp.Ceil,
)  # fmt: skip

_USER_REF = re.compile(r"\{user\.([A-Za-z_][A-Za-z0-9_]*)\}")
_PLACEHOLDER = "__dops_user_{}__"
_PLACEHOLDER_RE = re.compile(r"^__dops_user_([A-Za-z_][A-Za-z0-9_]*)__$")


class FilterError(InvalidRequest):
    """An invalid filter; ``details`` has the position (1-based line/column, 0-based offset)."""

    code = "invalid_filter"


def _position(node: exp.Expression, text: str) -> dict[str, int]:
    """1-based line and column where ``node`` starts in ``text``, and its 0-based offset."""
    starts = [
        int(n.meta["start"])
        for n in node.walk()
        if isinstance(n, exp.Expression) and n.meta and "start" in n.meta
    ]
    if not starts:
        return {}
    start = min(starts)
    line_start = text.rfind("\n", 0, start) + 1
    return {
        "line": text.count("\n", 0, start) + 1,
        "column": start - line_start + 1,
        "offset": start,
    }


def _fail(
    what: str, message: str, node: exp.Expression | None = None, text: str = "", **details: Any
) -> FilterError:
    pos = _position(node, text) if node is not None else {}
    where = f" at line {pos['line']}, column {pos['column']}" if pos else ""
    return FilterError(f"invalid {what}{where}: {message}", details={**pos, **details})


def parse_condition(text: str, what: str = "filter") -> exp.Expression:
    """Parse one boolean expression (never a statement)."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError(f"invalid {what}: it is empty")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"invalid {what}: longer than {MAX_FILTER_LENGTH} characters")
    try:
        tree = cast(exp.Expression, sqlglot.parse_one(text, read="duckdb", into=exp.Condition))
    except ParseError as e:
        err = e.errors[0] if e.errors else {}
        token = str(err.get("highlight") or "")
        desc = str(err.get("description") or e)
        # sqlglot's words name its classes; say it in the user's terms instead.
        if desc.startswith("Required keyword"):
            desc = f"{token!r} is missing an operand" if token else "incomplete expression"
        elif desc.startswith("Invalid expression") or desc.startswith("Unexpected token"):
            desc = f"unexpected {token!r}" if token else "unexpected end"
        pos = {"line": err.get("line"), "column": err.get("col")}
        if isinstance(pos["column"], int) and token:
            pos["column"] = max(1, pos["column"] - len(token) + 1)  # where the token starts
        raise FilterError(
            f"invalid {what} at line {pos['line']}, column {pos['column']}: {desc}",
            details={k: v for k, v in pos.items() if v is not None},
        ) from None
    except TokenError as e:
        raise FilterError(f"invalid {what}: {e}") from None
    for node in tree.walk():
        if isinstance(node, exp.Expression):
            node.comments = None
    return tree


def check_tree(
    tree: exp.Expression,
    columns: Iterable[str] | None,
    what: str = "filter",
    placeholders: bool = False,
    text: str = "",
) -> None:
    """Allow-list every node; check columns exist (case-sensitive, as DuckDB quotes them)."""
    known = list(columns) if columns is not None else None
    for node in tree.walk():
        assert isinstance(node, exp.Expression)
        if not isinstance(node, _ALLOWED):
            raise _fail(
                what,
                f"{node.sql(dialect='duckdb', comments=False)!r} is not allowed "
                "(use columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE, "
                "IS NULL and simple functions)",
                node,
                text,
            )
        if isinstance(node, exp.Column):
            if node.table or node.args.get("db") or node.args.get("catalog"):
                raise _fail(
                    what, f"qualified name {node.sql()!r}: use the bare column name", node, text
                )
            if placeholders and _PLACEHOLDER_RE.match(node.name):
                continue
            if known is not None and node.name not in known:
                close = difflib.get_close_matches(node.name, known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise _fail(
                    what,
                    f"unknown column {node.name!r}{hint}",
                    node,
                    text,
                    unknown_column=node.name,
                    close_matches=close,
                )
        if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.USERDEFINED,):
            raise _fail(what, f"unknown type {node.sql()!r}", node, text)


_NUMERIC = {"integer", "float", "decimal"}
_TEXT_FUNCS = (exp.Lower, exp.Upper, exp.Trim, exp.Substring, exp.DPipe)
_INT_FUNCS = (exp.Length, exp.Year, exp.Month, exp.Day)
_NUM_FUNCS = (exp.Abs, exp.Round, exp.Floor, exp.Ceil)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
_LOGIC = (exp.And, exp.Or, exp.Not)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)


def _family(kind: str | None) -> str | None:
    if kind in _NUMERIC:
        return "number"
    if kind in ("string", "boolean", "temporal"):
        return kind
    return None  # unknown: not checked


def _type_of(node: exp.Expression, kinds: Mapping[str, str]) -> str | None:
    """The value family of an expression: number, string, boolean, temporal or None."""
    if isinstance(node, exp.Paren):
        return _type_of(node.this, kinds)
    if isinstance(node, exp.Column):
        return _family(kinds.get(node.name))
    if isinstance(node, exp.Literal):
        return "string" if node.is_string else "number"
    if isinstance(node, exp.Boolean):
        return "boolean"
    if isinstance(node, exp.Tuple):
        return "tuple"  # only meaningful as the list of an IN
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Cast):
        to = node.args["to"]
        if to.is_type(*exp.DataType.TEXT_TYPES):
            return "string"
        if to.is_type(*exp.DataType.NUMERIC_TYPES):
            return "number"
        if to.is_type(*exp.DataType.TEMPORAL_TYPES):
            return "temporal"
        return "boolean" if to.is_type(exp.DataType.Type.BOOLEAN) else None
    if isinstance(node, _TEXT_FUNCS):
        return "string"
    if isinstance(node, (*_INT_FUNCS, *_NUM_FUNCS, *_ARITHMETIC, exp.Neg)):
        return "number"
    if isinstance(node, exp.Coalesce):
        for arg in [node.this, *node.expressions]:
            if (t := _type_of(arg, kinds)) is not None:
                return t
        return None
    if isinstance(node, (*_COMPARISONS, *_LOGIC, exp.In, exp.Between, exp.Is, exp.Like, exp.ILike)):
        return "boolean"
    return None


def _comparable(a: str | None, b: str | None) -> bool:
    if a is None or b is None or a == b:
        return True
    return {a, b} == {"temporal", "string"}  # '2013-01-01' against a timestamp


def check_types(tree: exp.Expression, kinds: Mapping[str, str], text: str) -> None:
    """Reject filters whose types cannot work, before an engine trips over a value."""

    def describe(node: exp.Expression, t: str | None) -> str:
        return f"{node.sql(dialect='duckdb', comments=False)} ({t or 'unknown'})"

    def need_bool(node: exp.Expression) -> None:
        t = _type_of(node, kinds)
        if t not in ("boolean", None):
            raise _fail(
                "filter",
                f"{describe(node, t)} is not a condition; compare it, e.g. `column = value`",
                node,
                text,
            )

    def need_comparable(left: exp.Expression, others: list[exp.Expression]) -> None:
        a = _type_of(left, kinds)
        for other in others:
            if not _comparable(a, b := _type_of(other, kinds)):
                raise _fail(
                    "filter",
                    f"cannot compare {describe(left, a)} with {describe(other, b)}",
                    other,
                    text,
                )

    need_bool(tree)
    for node in tree.walk():
        if isinstance(node, exp.And | exp.Or):
            need_bool(node.this)
            need_bool(node.expression)
        elif isinstance(node, exp.Not):
            need_bool(node.this)
        elif isinstance(node, _COMPARISONS):
            need_comparable(node.this, [node.expression])
        elif isinstance(node, exp.In):
            need_comparable(node.this, list(node.expressions))
        elif isinstance(node, exp.Between):
            need_comparable(node.this, [node.args["low"], node.args["high"]])
        elif isinstance(node, exp.Like | exp.ILike):
            if _type_of(node.this, kinds) not in ("string", None):
                raise _fail(
                    "filter", "LIKE needs text; CAST the column AS VARCHAR first", node, text
                )
        elif isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            for side in (node.this, node.expression):
                t = _type_of(side, kinds)
                if t not in ("number", None) and not (
                    t == "temporal" and isinstance(node, exp.Add | exp.Sub)
                ):
                    raise _fail("filter", f"arithmetic on {describe(side, t)}", side, text)


def parse_user_filter(text: str, columns: Iterable[str] | Mapping[str, str]) -> exp.Expression:
    """A user's ``where=``, validated against the dataset's columns (and their kinds)."""
    tree = parse_condition(text, "filter")
    check_tree(tree, columns, "filter", text=text)
    if isinstance(columns, Mapping):
        check_types(tree, columns, text)
    return tree


def _template(text: str) -> str:
    return _USER_REF.sub(lambda m: _PLACEHOLDER.format(m.group(1)), text)


def check_row_filter(text: str) -> str | None:
    """Why a row-filter template in dataops.yaml is invalid, or None."""
    try:
        tree = parse_condition(_template(text), "row_filter")
        check_tree(tree, None, "row_filter", placeholders=True, text=_template(text))
    except FilterError as e:
        return e.message
    return None


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def render_row_filter(
    text: str, attributes: Mapping[str, Any], columns: Iterable[str] | None
) -> exp.Expression:
    """The row filter for one user: ``{user.x}`` becomes literals from the user's attributes.

    A missing attribute, or an empty list, matches no rows: deny by default.
    """
    tree = parse_condition(_template(text), "row_filter")
    check_tree(tree, columns, "row_filter", placeholders=True, text=_template(text))

    def substitute(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.In):
            items: list[exp.Expression] = []
            for item in node.expressions:
                m = _PLACEHOLDER_RE.match(item.name) if isinstance(item, exp.Column) else None
                if m is None:
                    items.append(item)
                    continue
                value = attributes.get(m.group(1))
                if value is None:
                    continue
                values = value if isinstance(value, list | tuple) else [value]
                items.extend(_literal(v) for v in values)
            if not items:
                return exp.false()
            node.set("expressions", items)
            return node
        if isinstance(node, exp.Column):
            m = _PLACEHOLDER_RE.match(node.name)
            if m is not None:
                value = attributes.get(m.group(1))
                if value is None or isinstance(value, list | tuple):
                    # Unknown, or a list where one value is needed: nothing matches.
                    return exp.Null()
                return _literal(value)
        return node

    tree = tree.transform(substitute)
    # Comparisons with NULL are never true, so a missing attribute matches no rows.
    return tree


# Source queries ----------------------------------------------------------------------------------
# A SQL source's ``query`` and ``version_query`` run on the source database with the source's
# credentials (possibly the server's own, through an allowed environment variable): each must be
# one read-only SELECT of plain tables, calling only pure functions from this list. Anything
# else (a function sqlglot does not know, a statement, SELECT ... INTO, FOR UPDATE, a data-
# changing CTE) is refused naming the part, as filters are.

SQLGLOT_DIALECTS = {
    "postgresql": "postgres",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "oracle": "oracle",
}


def sqlglot_dialect(url: str) -> str:
    """The sqlglot dialect of a SQLAlchemy URL (``postgresql+psycopg://...`` -> postgres)."""
    backend = url.split("://", 1)[0].split("+", 1)[0].lower()
    return SQLGLOT_DIALECTS.get(backend, backend)


_QUERY_STRUCTURE: tuple[type[exp.Expression], ...] = (
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE,
    exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit,
    exp.Offset, exp.Distinct, exp.Alias, exp.TableAlias, exp.Table, exp.Star, exp.Dot,
    exp.Var, exp.Case, exp.If, exp.Interval, exp.Window, exp.WindowSpec,
)  # fmt: skip
QUERY_FUNCTIONS: tuple[type[exp.Expression], ...] = (
    exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp,
    exp.Variance, exp.VariancePop, exp.Nullif, exp.Greatest, exp.Least, exp.Concat,
    exp.ConcatWs, exp.Left, exp.Right, exp.Initcap, exp.MD5, exp.StrPosition, exp.Sqrt, exp.Ln,
    exp.Log, exp.Exp, exp.Pow, exp.Sign, exp.CurrentTimestamp, exp.CurrentDate,
    exp.CurrentTime, exp.DateTrunc, exp.TimestampTrunc, exp.Extract, exp.RowNumber, exp.Rank,
    exp.DenseRank, exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.TimeToStr,
)  # fmt: skip


MAX_QUERY_LENGTH = 100_000


class QueryError(InvalidRequest):
    """An invalid source query; ``details`` name the field and the position."""

    code = "invalid_query"


def _function_name(node: exp.Expression, dialect: str) -> str:
    """The function's name as the query spells it (sqlglot's own class names are not)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql(dialect=dialect, comments=False).split("(", 1)[0].strip() or type(node).key


def check_source_query(text: str, dialect: str, field: str) -> exp.Query:
    """One read-only SELECT calling only allowed functions, parsed in ``dialect``."""

    def fail(message: str, node: exp.Expression | None = None) -> QueryError:
        pos = _position(node, text) if node is not None else {}
        where = f" at line {pos['line']}, column {pos['column']}" if pos else ""
        return QueryError(f"{field}{where}: {message}", details={"field": field, **pos})

    if not isinstance(text, str) or not text.strip():
        raise fail("it is empty")
    if len(text) > MAX_QUERY_LENGTH:
        raise fail(f"longer than {MAX_QUERY_LENGTH} characters")
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except ParseError as e:
        err = e.errors[0] if e.errors else {}
        token = str(err.get("highlight") or "")
        line, col = err.get("line"), err.get("col")
        at = f" at line {line}, column {col}" if line else ""
        said = f"unexpected {token!r}" if token else "it is incomplete"
        raise fail(f"it does not parse{at}: {said}") from None
    except TokenError as e:
        raise fail(f"it does not parse: {e}") from None
    if len(statements) != 1:
        raise fail(f"give one SELECT, not {len(statements)} statements")
    query = cast(exp.Expression, statements[0])
    if not isinstance(query, exp.Query):
        raise fail(f"give one SELECT, not {type(query).key.upper()}", query)
    allowed = (*_ALLOWED, *_QUERY_STRUCTURE, *QUERY_FUNCTIONS)
    for node in query.walk():
        assert isinstance(node, exp.Expression)
        if isinstance(node, exp.Func) and not isinstance(node, allowed):
            raise fail(
                f"function {_function_name(node, dialect).lower()}() is not allowed in a "
                "source query (use aggregates, comparisons and plain scalar functions: the "
                "query must only read)",
                node,
            )
        if not isinstance(node, allowed):
            raise fail(
                f"{node.sql(dialect=dialect, comments=False)[:60]!r} is not allowed: a source "
                "query is one read-only SELECT (no INTO, locking, or data-changing clause)",
                node,
            )
    return query
