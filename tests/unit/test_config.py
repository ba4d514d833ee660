from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from jupyter_dataops.config import ConfigLoader, InvalidConfig, parse_config


def test_valid_config_parses():
    cfg = parse_config("admins: [ada]\ngroups:\n  analysts:\n    members: [ada, bob]\n", "f.yaml")
    assert cfg.groups_of("bob") == ["analysts"]
    assert cfg.groups_of("eve") == []
    assert cfg.admins == ["ada"]


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("groups:\n  a:\n    members: 5\n", 3, "groups.a.members"),
        ("version: 1\nadmin: [ada]\n", 2, "admin"),  # a typo is not silently ignored
        ("version: 2\n", 1, "version"),
        ("groups:\n  a:\n    members:\n      - ada\n      - [x]\n", 5, "groups.a.members.1"),
    ],
)
def test_invalid_config_names_line_and_field(text, line, field):
    with pytest.raises(InvalidConfig) as e:
        parse_config(text, "dataops.yaml")
    p = e.value.problems[0]
    assert (p.file, p.line, p.field) == ("dataops.yaml", line, field)
    assert f"dataops.yaml:{line}" in str(e.value)


def test_yaml_syntax_error_names_line():
    with pytest.raises(InvalidConfig) as e:
        parse_config("groups:\n  a: [ada\n  b: 1\n", "x.yaml")
    assert e.value.problems[0].line is not None
    assert "YAML syntax error" in e.value.problems[0].message


def test_top_level_must_be_mapping():
    with pytest.raises(InvalidConfig, match="mapping"):
        parse_config("- a\n- b\n", "x.yaml")


def _write(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(time.time_ns(), before + 1_000_000))


def test_loader_reloads_and_keeps_last_good(tmp_path):
    path = tmp_path / "dataops.yaml"
    loader = ConfigLoader(path)
    assert loader.get().groups == {} and not loader.loaded and loader.problems == []

    _write(path, "groups:\n  a:\n    members: [ada]\n")
    assert loader.get().groups_of("ada") == ["a"]
    assert loader.loaded

    _write(path, "groups:\n  a:\n    members: nope-not-a-list\n")
    assert loader.get().groups_of("ada") == ["a"]  # last good stays in force
    assert loader.problems[0].field == "groups.a.members"

    _write(path, "groups:\n  b:\n    members: [ada]\n")
    assert loader.get().groups_of("ada") == ["b"]
    assert loader.problems == []

    path.unlink()
    assert loader.get().groups == {}  # no file: nothing granted


def test_a_reader_during_the_first_load_gets_the_files_config_not_an_empty_one(
    tmp_path, monkeypatch
):
    # A server's first requests arrive together: one reads the file, the others must wait for
    # it, or the catalog mirrors an empty workspace and retires every dataset meanwhile.
    import threading

    from jupyter_dataops import config as config_module

    path = tmp_path / "dataops.yaml"
    path.write_text("groups:\n  a:\n    members: [ada]\n")
    parsing = threading.Event()
    real = config_module.parse_config

    def slow_parse(text: str, source: str):  # a large file's parse, made slow to be seen
        parsing.set()
        time.sleep(0.3)
        return real(text, source)

    monkeypatch.setattr(config_module, "parse_config", slow_parse)
    loader = ConfigLoader(path)
    first = threading.Thread(target=loader.get)
    first.start()
    assert parsing.wait(5)
    assert loader.get().groups_of("ada") == ["a"]  # the second reader, while the first parses
    first.join()
    assert loader.generation == 1
