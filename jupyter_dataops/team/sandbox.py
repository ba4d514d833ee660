"""Job kernels as unprivileged OS users: privilege separation for the DataOps service.

``jupyter dataops serve --user dataops``, started as root, forks a tiny *launcher* before it
reads any key or opens the store, and then drops to the ``dataops`` user for good. The
launcher stays root and does one thing: on request, start a kernel fork server
(:mod:`..jobs.forkserver`) as a given OS user, with a clean environment (no variable of the
service's: no store URL, no source credentials) and a fresh session, and hand the service its
socket. Everything else goes over that socket: runners forked by it run as that user, are
killed by it, and ship their outputs back as bytes, so a job kernel needs no access at all to
the service's state directory, keys, data files or environment; its only credential is its run
token.

The users it serves are checked: they exist, are neither root nor the service's own user, have a
uid of at least ``min_uid``, and (when configured) are on the allowed list.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxUser:
    name: str
    uid: int
    gid: int
    home: str


def check_user(
    name: str, *, service_uid: int, min_uid: int, allowed: tuple[str, ...]
) -> SandboxUser:
    """The OS user job kernels may run as, or ``PermissionError`` saying why not."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise PermissionError(f"no OS user {name!r} to run job kernels as") from None
    if pw.pw_uid == 0 or pw.pw_uid == service_uid:
        raise PermissionError(f"job kernels never run as {name!r} (root or the service's user)")
    if pw.pw_uid < min_uid:
        raise PermissionError(f"OS user {name!r} has uid {pw.pw_uid} < {min_uid}: a system user")
    if allowed and name not in allowed:
        raise PermissionError(f"OS user {name!r} is not in c.DataOps.sandbox_users")
    return SandboxUser(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


def _exec_forkserver(user: SandboxUser, fd: int, preload: list[str]) -> None:
    """In the launcher's child: become ``user`` (irrevocably) and exec a fork server."""
    try:
        os.setsid()
        os.setgroups(os.getgrouplist(user.name, user.gid))
        os.setgid(user.gid)
        os.setuid(user.uid)
        if os.getuid() != user.uid or os.geteuid() != user.uid:
            os._exit(3)
        os.umask(0o077)
        home = user.home if os.path.isdir(user.home) else "/"
        try:
            os.chdir(home)
        except OSError:
            os.chdir("/")
        env = {
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), SAFE_PATH]),
            "HOME": home,
            "USER": user.name,
            "LOGNAME": user.name,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONNOUSERSITE": "1",
        }
        os.set_inheritable(fd, True)
        argv = [sys.executable, "-m", "jupyter_dataops.jobs.forkserver", str(fd), *preload]
        os.execve(sys.executable, argv, env)
    finally:
        os._exit(4)  # only reached when exec failed


def _serve_launcher(
    sock: socket.socket, service_uid: int, min_uid: int, allowed: tuple[str, ...]
) -> int:
    """The launcher's loop (root): one fork server per request, until the service goes away."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # fork servers are reaped by the system
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service's stop is the service's
    reader = sock.makefile("r", encoding="utf-8")
    for line in reader:
        try:
            req = json.loads(line)
            user = check_user(str(req["user"]), service_uid=service_uid, min_uid=min_uid,
                              allowed=allowed)  # fmt: skip
            preload = [str(m) for m in req.get("preload") or []]
        except (ValueError, KeyError, TypeError, PermissionError) as e:
            sock.sendall(json.dumps({"error": str(e)}).encode() + b"\n")
            continue
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            reader.close()
            sock.close()
            mine.close()
            _exec_forkserver(user, theirs.fileno(), preload)
        theirs.close()
        socket.send_fds(sock, [json.dumps({"pid": pid}).encode() + b"\n"], [mine.fileno()])
        mine.close()
    return 0


class Launcher:
    """The service's handle on its root launcher (blocking calls: use a thread)."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self._sock = sock
        self.pid = pid
        self._lock = threading.Lock()

    @classmethod
    def fork(cls, service_uid: int, min_uid: int = 1000, allowed: tuple[str, ...] = ()) -> Launcher:
        """Fork the launcher from this (root, not yet threaded) process."""
        if os.geteuid() != 0:
            raise PermissionError("the launcher of sandboxed job kernels needs root")
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                mine.close()
                code = _serve_launcher(theirs, service_uid, min_uid, allowed)
            finally:
                os._exit(code)
        theirs.close()
        return cls(mine, pid)

    def fork_server(self, user: str, preload: tuple[str, ...] = ()) -> tuple[int, socket.socket]:
        """A new kernel fork server running as OS user ``user``: its pid and its socket."""
        with self._lock:
            self._sock.settimeout(30)
            self._sock.sendall(
                json.dumps({"user": user, "preload": list(preload)}).encode() + b"\n"
            )
            data, fds, _, _ = socket.recv_fds(self._sock, 4096, 1)
        if not data:
            raise RuntimeError("the launcher of sandboxed job kernels has exited")
        answer: dict[str, Any] = json.loads(data)
        if "error" in answer:
            raise PermissionError(answer["error"])
        return int(answer["pid"]), socket.socket(fileno=fds[0])


def drop_privileges(user: str) -> None:
    """Become ``user`` for good (from root): groups, gid, uid, HOME; refuses to stay root."""
    pw = pwd.getpwnam(user)
    if pw.pw_uid == 0:
        raise PermissionError("the service does not run as root: give it a user of its own")
    os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise PermissionError("could not drop root")
    os.environ.update({"HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name})
    os.umask(0o077)  # the service's files are its own
