from __future__ import annotations

from datetime import datetime

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..exceptions import Forbidden, InvalidRequest
from ..governance import audit
from ..models import AuditPage
from .base import DataOpsHandler, Operation


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 time, got {value!r}") from None


class AuditHandler(DataOpsHandler):
    path = "audit"
    operations = {
        "get": Operation(
            "The audit log, newest first (admins only); format=csv for a CSV file",
            AuditPage,
            params=(
                ("user", "string", ""),
                ("dataset", "string", ""),
                ("decision", "string", "allowed | denied | error"),
                ("action", "string", "read | preview"),
                ("since", "string", "ISO 8601"),
                ("until", "string", "ISO 8601"),
                ("before", "integer", "event id cursor from next_before"),
                ("limit", "integer", "at most 1000, default 100"),
                ("format", "string", "json (default) or csv"),
            ),
        ),
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        user = self.principal()
        if not await self.platform.store.run(self.platform.is_admin, user):
            raise Forbidden(
                f"the audit log is for admins; {user.name!r} is not in the admins "
                "list of dataops.yaml"
            )
        arg = self.get_query_argument
        try:
            limit = int(arg("limit", "100"))
            before = int(arg("before")) if arg("before", None) else None
        except ValueError:
            raise InvalidRequest("limit and before must be integers") from None
        if not 1 <= limit <= audit.MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {audit.MAX_PAGE}")
        decision = arg("decision", None)
        if decision not in (None, "allowed", "denied", "error"):
            raise InvalidRequest("decision must be allowed, denied or error")
        fmt = arg("format", "json")
        if fmt not in ("json", "csv"):
            raise InvalidRequest("format must be json or csv")
        q = audit.AuditQuery(
            user=arg("user", None),
            dataset=arg("dataset", None),
            decision=decision,
            action=arg("action", None),
            since=_time(arg("since", None), "since"),
            until=_time(arg("until", None), "until"),
            before=before,
            limit=limit,
        )
        page = await self.platform.store.run(audit.query, self.platform.store, q)
        if fmt == "csv":
            self.set_header("Content-Disposition", 'attachment; filename="dataops-audit.csv"')
            self.finish(audit.to_csv(page.events), set_content_type="text/csv; charset=utf-8")
            return
        self.write_model(page)
