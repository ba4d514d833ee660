"""Job notifications: a signed webhook POST and/or an e-mail when a run ends for good.

:meth:`JobService.finish` calls :meth:`Notifier.run_ended` after the run's final state is
committed, and only when no retry follows. Delivery runs on a small thread pool, never on the
executor's path, and every delivery's outcome is a row of ``dops_notifications``.

Webhooks carry ``X-DataOps-Signature: sha256=<hex>``: the HMAC-SHA256 of the exact body, keyed
by the job's webhook secret (:func:`webhook_secret`, derived from the workspace secret and the
job id; the job's owner reads it as ``webhook_secret`` in ``GET jobs/{name}``).

A webhook is a request the server makes on a user's behalf, and its outcome is shown to that
user: it must not reach what only the server can (loopback, link-local, private networks, a
cloud's metadata address). :class:`WebhookPolicy` decides, on the addresses a URL's host
resolves to, when the job is defined (a 400) and again at each delivery, which then connects to
exactly the address it checked (a name that resolves elsewhere later changes nothing) and
follows no redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from ..exceptions import InvalidRequest
from ..store import Store
from ..store import tables as t

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-DataOps-Signature"
FAILURE_STATES = ("failed", "timed_out")


def webhook_secret(workspace_secret: bytes, job_id: str) -> str:
    """The key that signs one job's webhooks (hex). One job's key reveals nothing of another's
    nor of the workspace secret; deleting ``.dataops/secret`` changes them all."""
    return hmac.new(
        workspace_secret, f"dataops-webhook:{job_id}".encode(), hashlib.sha256
    ).hexdigest()


def signature(secret: str, body: bytes) -> str:
    """The ``X-DataOps-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""  # empty: e-mail is off
    port: int = 25
    sender: str = "dataops@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookRefused(Exception):
    """A webhook URL the policy does not let the server call; the message says why."""


def _kind_of(ip: IPAddress) -> str | None:
    """Why an address is not a public one (None when it is)."""
    for label, test in (
        ("a loopback", "is_loopback"), ("a link-local", "is_link_local"),
        ("an unspecified", "is_unspecified"), ("a multicast", "is_multicast"),
        ("a private", "is_private"), ("a reserved", "is_reserved"),
    ):  # fmt: skip
        if getattr(ip, test):
            return f"{label} address"
    return None if ip.is_global else "a non-public address"


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and the IPv4 ones an IPv6 address carries (mapped, 6to4, Teredo)."""
    out: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            out.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            out.append(ip.sixtofour)
        if ip.teredo is not None:
            out.append(ip.teredo[1])
    return out


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class WebhookPolicy:
    """Which hosts webhooks may call (``c.DataOps.webhook_allowed_hosts`` and
    ``webhook_allowed_networks``).

    ``allowed_hosts`` empty: any host; otherwise only those named (``hooks.example.com``,
    ``*.example.com``) or whose addresses are in a listed network. Whatever the host, every
    address it resolves to must be public, or inside one of ``allowed_networks``.
    """

    allowed_hosts: Sequence[str] = ()
    allowed_networks: Sequence[str] = ()
    resolve: Callable[[str, int], list[str]] = field(default=_resolve, compare=False)

    def _networks(self, entries: Sequence[str]) -> list[IPNetwork]:
        return [ipaddress.ip_network(e, strict=False) for e in entries if _is_network(e)]

    def addresses(self, url: str) -> tuple[str, int, list[str]]:
        """(host, port, the addresses to connect to), or :class:`WebhookRefused`."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise WebhookRefused("not an http(s) URL with a host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise WebhookRefused("its port is not a number from 0 to 65535") from None
        try:
            found = self.resolve(host, port)
        except (OSError, UnicodeError) as e:
            raise WebhookRefused(f"{host} does not resolve ({e})") from None
        if not found:
            raise WebhookRefused(f"{host} does not resolve")
        ips = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if self.allowed_hosts and not self._host_listed(host, ips):
            raise WebhookRefused(
                f"{host} is not in c.DataOps.webhook_allowed_hosts "
                f"({', '.join(self.allowed_hosts)})"
            )
        private = self._networks(self.allowed_networks)
        literal = _is_network(host) and "/" not in host
        for ip in ips:
            embedded = _embedded(ip)
            for a in (*embedded[1:], ip):  # what an IPv6 address carries says the most
                why = _kind_of(a)
                if why and not any(a in n for n in private):
                    what = str(ip) if a == ip else f"{ip} (that is {a})"
                    said = f"{what} is" if literal else f"{host} resolves to {what},"
                    raise WebhookRefused(
                        f"{said} {why}; webhooks may not call it unless "
                        "c.DataOps.webhook_allowed_networks includes it"
                    )
        return host, port, [str(ip) for ip in ips]

    def _host_listed(self, host: str, ips: list[IPAddress]) -> bool:
        for entry in self.allowed_hosts:
            e = entry.strip().lower().rstrip(".")
            if _is_network(e):
                net = ipaddress.ip_network(e, strict=False)
                if all(ip in net for ip in ips):
                    return True
            elif e.startswith("*."):
                if host.rstrip(".").endswith(e[1:]):
                    return True
            elif host.rstrip(".") == e:
                return True
        return False


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return False
    return True


class _Retry(Exception):
    """A delivery failure worth another attempt (connection error, 5xx, SMTP 4xx)."""


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


class Notifier:
    attempts = 3  # per delivery, on connection errors and 5xx
    backoff_s = 0.5  # doubled after each failed attempt
    timeout_s = 10.0  # per attempt

    def __init__(
        self,
        store: Store,
        workspace_secret: bytes,
        smtp: SmtpSettings,
        workers: int = 2,
        webhooks: WebhookPolicy | None = None,
    ) -> None:
        self.store = store
        self.smtp = smtp
        self.webhooks = webhooks or WebhookPolicy()  # default: public addresses only
        self.server_url = ""  # set once known (the executor's); runs then get a link
        self._secret = workspace_secret
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataops-notify")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        # The job service's settle(): drain() waits for runs whose end is being recorded.
        self.settle: Callable[[float | None], bool] | None = None

    # the job service's side --------------------------------------------------------------------
    def secret_for(self, job_id: str) -> str:
        return webhook_secret(self._secret, job_id)

    def check(self, notify: dict[str, Any] | None) -> None:
        """Refuse what could never be delivered (e-mails without an SMTP server) or must not
        be (webhooks to hosts the policy refuses). Resolves names: call off the event loop."""
        for i, url in enumerate((notify or {}).get("webhooks", [])):
            try:
                self.webhooks.addresses(url)
            except WebhookRefused as e:
                raise InvalidRequest(
                    f"notify.webhooks.{i}: {url} is refused: {e}",
                    details={"field": f"notify.webhooks.{i}", "url": url, "reason": str(e)},
                ) from None
        if notify and notify.get("emails") and not self.smtp.host:
            raise InvalidRequest(
                "notify.emails: e-mail is not configured on this server "
                "(set c.DataOps.smtp_host); use webhooks, or ask an admin",
                details={"field": "notify.emails"},
            )

    def run_ended(self, run_id: str) -> None:
        """Notify, in the background, about a run that ended for good."""
        try:
            with self._lock:
                fut = self._pool.submit(self._notify, run_id)
                self._pending.add(fut)
        except RuntimeError:  # shut down: the run's record stands, its notification is lost
            log.warning("DataOps: run %s ended during shutdown; no one is notified", run_id)
            return
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[None]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every notification asked for so far is delivered (or has failed),
        those of runs whose end is being recorded now (see ``settle``) included."""
        if self.settle is not None:
            self.settle(timeout)
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            fut.exception(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # deliveries under way are finished and recorded

    # delivery ----------------------------------------------------------------------------------
    def _notify(self, run_id: str) -> None:
        try:
            facts, notify = self._facts(run_id)
        except Exception:
            log.exception("DataOps: cannot read run %s to notify about it", run_id)
            return
        if facts is None:
            return
        for url in notify.get("webhooks", []):
            self._deliver(facts, "webhook", url, self._post)
        for address in notify.get("emails", []):
            self._deliver(facts, "email", address, self._mail)

    def _facts(self, run_id: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        with self.store.session() as s:
            r = s.get(t.Run, run_id)
            job = s.get(t.JobDefinition, r.job_id) if r is not None and r.job_id else None
            if r is None or job is None or not job.notify:
                return None, {}
            event = "success" if r.status == "succeeded" else "failure"
            if r.status not in ("succeeded", *FAILURE_STATES) or event not in job.notify.get(
                "on", ["failure"]
            ):
                return None, {}
            err = r.error or {}
            duration = (
                (r.finished_at - r.started_at).total_seconds()
                if r.finished_at and r.started_at
                else None
            )
            facts = {
                "event": event, "run_id": r.id, "job_id": job.id, "job_name": job.name,
                "status": r.status, "owner": r.owner, "notebook_path": r.notebook_path,
                "parameters": r.parameters, "trigger": r.trigger, "attempt": r.attempt,
                "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
                "duration_s": duration,
                "error": {
                    "reason": err.get("reason"), "message": err.get("message"),
                    "ename": err.get("ename"), "cell_index": err.get("cell_index"),
                    "cell_id": err.get("cell_id"),
                } if r.error else None,
                "url": self._link(r.id),
            }  # fmt: skip
            return facts, dict(job.notify)

    def _link(self, run_id: str) -> str | None:
        if not self.server_url:
            return None
        return f"{self.server_url.rstrip('/')}/dataops/api/v1/runs/{run_id}"

    def _deliver(
        self,
        facts: dict[str, Any],
        channel: str,
        target: str,
        send: Callable[[dict[str, Any], str], None],
    ) -> str | None:
        error: str | None = None
        attempt = 0
        for attempt in range(1, self.attempts + 1):
            try:
                send(facts, target)
                error = None
                break
            except _Retry as e:
                error = str(e)
                if attempt < self.attempts:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
            except Exception as e:  # not worth retrying (4xx, refused recipient, bad login)
                error = str(e) or type(e).__name__
                break
        if error:
            log.warning("DataOps: %s notification of run %s to %s failed: %s",
                        channel, facts["run_id"], target, error)  # fmt: skip
        try:
            with self.store.session() as s:
                s.add(
                    t.Notification(
                        run_id=facts["run_id"],
                        job_id=facts["job_id"],
                        channel=channel,
                        target=target,
                        event=facts["event"],
                        status="failed" if error else "sent",
                        attempts=attempt,
                        error=error,
                    )
                )
        except Exception:
            log.exception("DataOps: cannot record the notification of run %s", facts["run_id"])
        return error

    def _post(self, facts: dict[str, Any], url: str) -> None:
        import http.client
        import ssl

        try:
            host, port, addresses = self.webhooks.addresses(url)
        except WebhookRefused as e:
            raise RuntimeError(f"refused: {e}") from None  # the policy will not change its mind
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = json.dumps(facts, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"jupyter-dataops/{__version__}",
            SIGNATURE_HEADER: signature(self.secret_for(facts["job_id"]), body),
        }
        error: Exception | None = None
        for address in addresses:
            conn: http.client.HTTPConnection
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    host, port, timeout=self.timeout_s, context=ssl.create_default_context()
                )
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
            # To the address just checked, never to a fresh lookup of the name (DNS
            # rebinding); the Host header and TLS (SNI, certificate) still use the name.
            conn._create_connection = (  # type: ignore[attr-defined]
                lambda _addr, timeout, source, ip=address: socket.create_connection(
                    (ip, port), timeout, source
                )
            )
            try:
                conn.request("POST", target, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException) as e:
                error = e
                continue
            finally:
                conn.close()
            message = f"HTTP {resp.status} {resp.reason}"
            if 300 <= resp.status < 400:
                where = resp.getheader("Location") or "?"
                raise RuntimeError(f"{message}: redirects are not followed (to {where})")
            if resp.status >= 500:
                raise _Retry(message)
            if resp.status >= 400:
                raise RuntimeError(message)
            return
        raise _Retry(f"cannot reach {url}: {error}")

    def _mail(self, facts: dict[str, Any], address: str) -> None:
        subject = (
            f"[dataops] {facts['job_name']} {facts['status'].replace('_', ' ')} "
            f"(run {facts['run_id']})"
        )
        self.send_mail(address, subject, mail_body(facts))

    # -- dashboards' subscribers -------------------------------------------------------------
    def mail_delivery(
        self,
        run_id: str,
        job_id: str | None,
        address: str,
        subject: str,
        text: str,
        attachment: tuple[str, bytes, str] | None = None,
        event: str = "render",
    ) -> str | None:
        """Send one e-mail now (blocking; retried as a run's are) and record its outcome as a
        notification of ``run_id``; the error, or None."""
        facts = {"run_id": run_id, "job_id": job_id, "event": event}

        def send(_facts: dict[str, Any], to: str) -> None:
            self.send_mail(to, subject, text, attachment)

        return self._deliver(facts, "email", address, send)

    def send_mail(
        self,
        address: str,
        subject: str,
        text: str,
        attachment: tuple[str, bytes, str] | None = None,
    ) -> None:
        """One plain-text e-mail (and a file: name, bytes, MIME type) through the SMTP server;
        raises ``_Retry`` for what is worth another attempt."""
        import smtplib
        import ssl
        from email.message import EmailMessage

        if not self.smtp.host:
            raise RuntimeError("e-mail is not configured (c.DataOps.smtp_host is empty)")
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self.smtp.sender
        msg["To"] = address
        msg.set_content(text)
        if attachment is not None:
            name, data, mime = attachment
            main, _, subtype = mime.partition("/")
            msg.add_attachment(data, maintype=main, subtype=subtype, filename=name)
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=self.timeout_s) as smtp:
                if self.smtp.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.smtp.username:
                    smtp.login(self.smtp.username, self.smtp.password)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as e:
            raw = e.smtp_error
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            message = f"SMTP {e.smtp_code}: {text}"
            if 400 <= e.smtp_code < 500:
                raise _Retry(message) from None
            raise RuntimeError(message) from None
        except smtplib.SMTPRecipientsRefused as e:
            raise RuntimeError(f"recipient refused: {e.recipients}") from None
        except smtplib.SMTPServerDisconnected as e:
            raise _Retry(f"{self.smtp.host}:{self.smtp.port} disconnected: {e}") from None
        except smtplib.SMTPException as e:
            raise RuntimeError(f"SMTP: {e}") from None
        except OSError as e:  # refused, unreachable, timed out
            raise _Retry(f"cannot reach {self.smtp.host}:{self.smtp.port}: {e}") from None


def mail_body(facts: dict[str, Any]) -> str:
    """The plain-text e-mail of a run's notification."""
    lines = [
        f"Job {facts['job_name']} {facts['status'].replace('_', ' ')} "
        f"(run {facts['run_id']}, attempt {facts['attempt']}).",
        "",
        f"Notebook:   {facts['notebook_path']}",
        f"Parameters: {json.dumps(facts['parameters'], sort_keys=True)}",
        f"Owner:      {facts['owner']} (trigger: {facts['trigger']})",
        f"Started:    {facts['started_at'] or '-'}",
        f"Finished:   {facts['finished_at'] or '-'}",
    ]
    if facts["duration_s"] is not None:
        lines.append(f"Duration:   {facts['duration_s']:.1f} s")
    err = facts["error"]
    if err:
        lines.append(f"Error:      {err['message']}")
        if err.get("cell_index") is not None:  # numbered as the Jobs tab numbers cells
            cell = f"{err['cell_index'] + 1}" + (
                f" (id {err['cell_id']})" if err.get("cell_id") else ""
            )
            lines.append(f"Cell:       {cell} of {facts['notebook_path']}")
    if facts["url"]:
        lines.append(f"Run:        {facts['url']}")
    return "\n".join(lines) + "\n"
