"""``dataops.yaml``: the workspace's policy as code, its schema and its loader.

The loader re-reads the file when it changes (checked with one ``stat`` per access, so a policy
edit takes effect on the next request without a restart) and keeps the last good config in
force when the new text is invalid; the rejection names the file, the line and the field.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .models import ConfigProblem

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Group(_Strict):
    description: str = ""
    members: list[str] = Field(default_factory=list)


class UserSpec(_Strict):
    """Attributes row filters may use, as ``{user.<name>}``."""

    attributes: dict[str, str | int | float | bool | list[str | int | float]] = Field(
        default_factory=dict
    )


class ColumnMeta(_Strict):
    description: str = ""
    classification: list[str] = Field(
        default_factory=list,
        description="Labels such as pii or confidential; masks may target them.",
    )


class ParquetSource(_Strict):
    type: Literal["parquet"]
    path: str = Field(description="File, directory or glob, relative to the workspace root.")
    hive_partitioning: bool = True


class CsvSource(_Strict):
    type: Literal["csv"]
    path: str
    delimiter: str = ","
    header: bool = True


class SqlSource(_Strict):
    type: Literal["sql"]
    url: str = Field(description="SQLAlchemy URL; ${ENV_VAR} is replaced from the environment.")
    table: str | None = Field(default=None, description="schema.table or table")
    query: str | None = Field(default=None, description="A SELECT, used as a subquery")
    version_query: str | None = Field(
        default=None,
        description="A query returning one row whose values identify the data's version.",
    )

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        return self


Source = Annotated[ParquetSource | CsvSource | SqlSource, Field(discriminator="type")]


class DatasetSpec(_Strict):
    title: str = ""
    description: str = ""
    owner: str
    tags: list[str] = Field(default_factory=list)
    source: Source
    columns: dict[str, ColumnMeta] = Field(default_factory=dict)


class Grant(_Strict):
    """Who may read which datasets, and which rows of them."""

    description: str = ""
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    datasets: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    row_filter: str | None = Field(
        default=None,
        description="SQL condition on the dataset's columns; may use {user.name}, "
        "{user.groups} and {user.<attribute>}.",
    )

    @model_validator(mode="after")
    def _complete(self) -> Grant:
        if not (self.users or self.groups):
            raise ValueError("a grant needs users or groups")
        if not (self.datasets or self.tags):
            raise ValueError("a grant needs datasets or tags")
        return self


MaskFunction = Literal["redact", "hash", "null", "partial", "round"]


class Mask(_Strict):
    """Columns shown masked to everyone but the exempt."""

    description: str = ""
    datasets: list[str] = Field(default_factory=list, description="Empty: every dataset.")
    tags: list[str] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    classifications: list[str] = Field(default_factory=list)
    function: MaskFunction
    keep: int = Field(default=4, ge=0, le=64, description="partial: trailing characters kept")
    digits: int = Field(default=0, ge=-18, le=18, description="round: decimal digits kept")
    exempt_users: list[str] = Field(default_factory=list)
    exempt_groups: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _targets(self) -> Mask:
        if not (self.columns or self.classifications):
            raise ValueError("a mask needs columns or classifications")
        return self


class Registrars(_Strict):
    """Who, besides admins, may register SQL sources through the API."""

    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)


class WorkspaceConfig(_Strict):
    """The schema of dataops.yaml."""

    version: int = Field(default=1, description="Schema version of this file.")
    admins: list[str] = Field(
        default_factory=list,
        description="Users who may read the audit log and manage every dataset and job.",
    )
    groups: dict[str, Group] = Field(default_factory=dict)
    users: dict[str, UserSpec] = Field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = Field(default_factory=dict)
    grants: list[Grant] = Field(default_factory=list)
    masks: list[Mask] = Field(default_factory=list)
    sql_source_registrars: Registrars = Field(
        default_factory=Registrars,
        description="Users and groups who may register SQL datasets (admins always may); "
        "file datasets in the workspace anyone may register.",
    )

    @field_validator("version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only version 1 is supported")
        return v

    @field_validator("groups", "datasets")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"invalid name {name!r}: use letters, digits, _ . -")
        return v

    def groups_of(self, user: str) -> list[str]:
        return sorted(name for name, g in self.groups.items() if user in g.members)

    def may_register_sql(self, user: str, groups: Any = ()) -> bool:
        r = self.sql_source_registrars
        return user in self.admins or user in r.users or bool(set(groups) & set(r.groups))

    def cross_check(self) -> list[tuple[tuple[Any, ...], str]]:
        """References to things that do not exist, as (location, message)."""
        problems: list[tuple[tuple[Any, ...], str]] = []
        for i, g in enumerate(self.grants):
            for j, name in enumerate(g.groups):
                if name not in self.groups:
                    problems.append((("grants", i, "groups", j), f"unknown group {name!r}"))
            for j, name in enumerate(g.datasets):
                if name not in self.datasets:
                    problems.append((("grants", i, "datasets", j), f"unknown dataset {name!r}"))
            if g.row_filter is not None:
                from .governance.filters import check_row_filter

                err = check_row_filter(g.row_filter)
                if err:
                    problems.append((("grants", i, "row_filter"), err))
        for j, name in enumerate(self.sql_source_registrars.groups):
            if name not in self.groups:
                problems.append((("sql_source_registrars", "groups", j), f"unknown group {name!r}"))
        for name, d in self.datasets.items():
            if isinstance(d.source, SqlSource):
                from .governance.filters import QueryError, check_source_query, sqlglot_dialect

                for key in ("query", "version_query"):
                    text = getattr(d.source, key)
                    try:
                        if text is not None:
                            check_source_query(text, sqlglot_dialect(d.source.url), key)
                    except QueryError as e:
                        problems.append((("datasets", name, "source", key), e.message))
        for i, m in enumerate(self.masks):
            for j, name in enumerate(m.datasets):
                if name not in self.datasets:
                    problems.append((("masks", i, "datasets", j), f"unknown dataset {name!r}"))
            for j, name in enumerate(m.exempt_groups):
                if name not in self.groups:
                    problems.append((("masks", i, "exempt_groups", j), f"unknown group {name!r}"))
        return problems


class InvalidConfig(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(_describe(p) for p in problems))
        self.problems = problems


class ConfigTooLarge(InvalidConfig):
    """The text is over a bound on size, nesting or alias expansion (refused unparsed)."""

    def __init__(self, message: str, problem: ConfigProblem, *, limit: int) -> None:
        super().__init__([problem])
        self.message = message
        self.limit = limit


def _describe(p: ConfigProblem) -> str:
    where = p.file + (f":{p.line}" if p.line else "")
    field = f" (field {p.field})" if p.field else ""
    return f"{where}{field}: {p.message}"


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Map each key path of a composed YAML tree to its 1-based line."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[(*path, k)] = key.start_mark.line + 1
            _line_index(value, (*path, k), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _line_index(item, (*path, i), out)


# Bounds on a policy file, checked before anything expands it: a few hundred bytes of nested
# YAML aliases ("billion laughs") would otherwise expand to millions of nodes.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_DEPTH = 64
MAX_CONFIG_NODES = 200_000  # after alias expansion

_OPENERS = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSERS = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _expanded_size(root: yaml.Node) -> int:
    """Nodes the tree has once every alias is expanded, counted without expanding (an alias
    is the same node object), and without recursion; a cycle counts as too many."""
    too_many = MAX_CONFIG_NODES + 1
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        kids: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if children_done:
            open_.discard(id(node))
            sizes[id(node)] = min(1 + sum(sizes[id(k)] for k in kids), too_many)
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_:
            return too_many
        open_.add(id(node))
        stack.append((node, True))
        for k in kids:
            if id(k) in open_:
                return too_many
            if id(k) not in sizes:
                stack.append((k, False))
    return sizes[id(root)]


def check_config_bounds(text: str, file: str) -> yaml.Node | None:
    """Compose ``text`` within the bounds; :class:`ConfigTooLarge` names the bound exceeded."""

    def too_large(what: str, limit: int) -> ConfigTooLarge:
        return ConfigTooLarge(
            f"{file}: {what} exceeds the limit of {limit:,}",
            ConfigProblem(message=f"{what} exceeds the limit of {limit:,}", file=file),
            limit=limit,
        )

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise too_large(f"the file's size ({size:,} bytes)", MAX_CONFIG_BYTES)
    depth = 0
    for token in yaml.scan(text, Loader=_Loader):
        if isinstance(token, _OPENERS):
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                raise too_large("the nesting depth", MAX_CONFIG_DEPTH)
        elif isinstance(token, _CLOSERS):
            depth -= 1
    node = yaml.compose(text, Loader=_Loader)
    if node is not None and _expanded_size(node) > MAX_CONFIG_NODES:
        raise too_large("the number of values once YAML aliases are expanded", MAX_CONFIG_NODES)
    return node


def parse_config(text: str, file: str) -> WorkspaceConfig:
    """Parse and validate dataops.yaml text; raise :class:`InvalidConfig` naming line and field,
    or :class:`ConfigTooLarge` (a kind of it) naming the size, depth or expansion limit.

    Blocking, and up to a few hundred milliseconds for a large file: never on the event loop.
    """
    try:
        node = check_config_bounds(text, file)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        msg = f"YAML syntax error: {getattr(e, 'problem', None) or e}"
        raise InvalidConfig([ConfigProblem(message=msg, file=file, line=line)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidConfig(
            [ConfigProblem(message="the top level must be a mapping", file=file, line=1)]
        )
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)

    def problem(loc: tuple[Any, ...], message: str) -> ConfigProblem:
        line = None
        for n in range(len(loc), -1, -1):  # deepest path that exists in the file
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        field = ".".join(str(p) for p in loc) or None
        return ConfigProblem(message=message, file=file, line=line, field=field)

    try:
        config = WorkspaceConfig.model_validate(data)
    except ValidationError as e:
        raise InvalidConfig(
            [problem(_clean_loc(err["loc"]), err["msg"]) for err in e.errors()]
        ) from None
    refs = config.cross_check()
    if refs:
        raise InvalidConfig([problem(loc, msg) for loc, msg in refs])
    return config


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Discriminated unions add the tag ("parquet") to the location; the file has no such key.
    return tuple(
        p
        for i, p in enumerate(loc)
        if not (i > 0 and loc[i - 1] == "source" and p in ("parquet", "csv", "sql"))
    )


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int
    inode: int


_UNREAD = object()


class ConfigLoader:
    """Holds the config in force; reloads on change, keeps the last good one on error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: _Stamp | object | None = _UNREAD
        self._config = WorkspaceConfig()
        self._loaded = False  # a valid file has been read at least once
        self._problems: list[ConfigProblem] = []
        self.generation = 0  # bumped on every change of the config in force

    def _stat(self) -> _Stamp | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return _Stamp(st.st_mtime_ns, st.st_size, st.st_ino)

    def get(self) -> WorkspaceConfig:
        """The config in force, re-reading the file first if it changed."""
        stamp = self._stat()
        if stamp == self._stamp:
            return self._config
        with self._lock:
            if stamp != self._stamp:
                self._reload(stamp)
            return self._config

    def snapshot(self) -> tuple[WorkspaceConfig, int]:
        """The config in force and its generation, read together."""
        self.get()
        with self._lock:
            return self._config, self.generation

    def _reload(self, stamp: _Stamp | None) -> None:
        # The new stamp is set last: until then, other readers wait on the lock for the new
        # config instead of taking the old one (at start, the empty one) for the file's.
        try:
            self._read(stamp)
        finally:
            self._stamp = stamp

    def _read(self, stamp: _Stamp | None) -> None:
        if stamp is None:
            # No file: an empty workspace (deny by default); not an error.
            self._config, self._loaded, self._problems = WorkspaceConfig(), False, []
            self.generation += 1
            return
        try:
            if stamp.size > MAX_CONFIG_BYTES:  # refused unread
                msg = (
                    f"the file's size ({stamp.size:,} bytes) exceeds the limit of "
                    f"{MAX_CONFIG_BYTES:,}"
                )
                raise InvalidConfig([ConfigProblem(message=msg, file=str(self.path))])
            text = self.path.read_text(encoding="utf-8")
            config = parse_config(text, str(self.path))
        except InvalidConfig as e:
            self._problems = e.problems
            log.error("Rejected %s, keeping the last good config: %s", self.path, e)
            return
        except OSError as e:
            self._problems = [ConfigProblem(message=f"cannot read: {e}", file=str(self.path))]
            log.error("Cannot read %s: %s", self.path, e)
            return
        self._config, self._loaded, self._problems = config, True, []
        self.generation += 1
        log.info("Loaded workspace config %s", self.path)

    @property
    def loaded(self) -> bool:
        self.get()
        return self._loaded

    @property
    def problems(self) -> list[ConfigProblem]:
        self.get()
        return list(self._problems)
