"""``dataops.yaml``: the workspace's policy as code, its schema and its loader.

The loader re-reads the file when it changes (checked with one ``stat`` per access, so a policy
edit takes effect on the next request without a restart) and keeps the last good config in
force when the new text is invalid; the rejection names the file, the line and the field.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .models import ConfigProblem

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Group(_Strict):
    description: str = ""
    members: list[str] = Field(default_factory=list)


class WorkspaceConfig(_Strict):
    """The schema of dataops.yaml."""

    version: int = Field(default=1, description="Schema version of this file.")
    admins: list[str] = Field(
        default_factory=list,
        description="Users who may read the audit log and manage every dataset and job.",
    )
    groups: dict[str, Group] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only version 1 is supported")
        return v

    @field_validator("groups")
    @classmethod
    def _group_names(cls, v: dict[str, Group]) -> dict[str, Group]:
        import re

        for name in v:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"invalid group name {name!r}")
        return v

    def groups_of(self, user: str) -> list[str]:
        return sorted(name for name, g in self.groups.items() if user in g.members)


class InvalidConfig(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(_describe(p) for p in problems))
        self.problems = problems


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


def parse_config(text: str, file: str) -> WorkspaceConfig:
    """Parse and validate dataops.yaml text; raise :class:`InvalidConfig` naming line and field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
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
    try:
        return WorkspaceConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = None
            for n in range(len(loc), -1, -1):  # deepest path that exists in the file
                if loc[:n] in lines:
                    line = lines[loc[:n]]
                    break
            field = ".".join(str(p) for p in loc) or None
            problems.append(ConfigProblem(message=err["msg"], file=file, line=line, field=field))
        raise InvalidConfig(problems) from None


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

    def _reload(self, stamp: _Stamp | None) -> None:
        self._stamp = stamp
        if stamp is None:
            # No file: an empty workspace (deny by default); not an error.
            self._config, self._loaded, self._problems = WorkspaceConfig(), False, []
            return
        try:
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
        log.info("Loaded workspace config %s", self.path)

    @property
    def loaded(self) -> bool:
        self.get()
        return self._loaded

    @property
    def problems(self) -> list[ConfigProblem]:
        self.get()
        return list(self._problems)
