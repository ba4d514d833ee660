"""The live view's kernels: started ahead, handed to one viewer, run as that viewer, capped.

A preheated Voila kernel has run the notebook before anyone asked, as whoever started it; here
a kernel is started ahead of time with its imports warm and nothing of any notebook executed.
A viewer gets one; only then does it receive the viewer's token (scope ``live``: bound to this
kernel, expiring, allowed governed reads and nothing else) and the viewer's validated
parameters, and only then does Voila execute the notebook in it. So every governed pull of a
live view runs as its viewer, and the dashboard's code can act as no one else.

At most ``c.DataOps.live_kernels`` kernels live at once (ready ones included): past that a
viewer gets a 503 with ``Retry-After``. A viewer's kernel idle for ``live_idle_timeout``
seconds is shut down (Jupyter Server's culler), and its place goes back to the pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

from ..client import TOKEN_ENV, URL_ENV
from ..exceptions import Unavailable
from ..identity import TokenSigner

log = logging.getLogger(__name__)

# Variables of this process a live kernel must not inherit: credentials of the server's own.
WITHHELD_ENV = (TOKEN_ENV, "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTER_TOKEN")
# Of what Voila gives a kernel, what the notebook may read (Voila's request variables).
REQUEST_ENV = ("QUERY_STRING", "SCRIPT_NAME", "PATH_INFO", "SERVER_NAME", "SERVER_PORT",
               "SERVER_PROTOCOL", "SERVER_SOFTWARE", "VOILA_REQUEST_URL", "VOILA_BASE_URL",
               "VOILA_SERVER_URL", "VOILA_PREHEAT", "VOILA_APP_PORT")  # fmt: skip
RETRY_AFTER_S = 10

# Run in a viewer's kernel before the notebook: the viewer's token and the run's directory; a
# refused governed read (the policy's denial) is shown as such, not as a stripped traceback.
PREAMBLE = """\
import os as _o, sys as _s, json as _j
_o.environ.update(_j.loads({env!r}))
_o.chdir({cwd!r})
_s.path.insert(0, {cwd!r})
def _dops_refused(shell, etype, evalue, tb, tb_offset=None):
    import html
    from IPython.display import HTML, display
    display(HTML('<div class="dops-refused" role="alert" style="padding:8px 12px;'
                 'border-left:4px solid #d32f2f;background:#fdecea;color:#611a15">'
                 + html.escape(str(evalue)) + '</div>'))
    return []
get_ipython().set_custom_exc(
    (__import__('jupyter_dataops.client', fromlist=['x']).DataOpsClientError,), _dops_refused)
del _o, _s, _j, _dops_refused
"""


class WarmClient(AsyncKernelClient):  # type: ignore[misc]
    """A kernel client connected while its kernel waited in the pool.

    Connecting a client costs a fifth of a second (``wait_for_ready`` waits that long for the
    kernel's iopub to settle): the ready kernels' clients pay it ahead, off the viewer's time,
    and the one Voila executes the notebook with is the same client, already ready.
    """

    ready = False

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # type: ignore[override]
        if not self.ready:
            await super().wait_for_ready(timeout=timeout)
            self.ready = True


class _KernelForVoila:
    """The kernel manager Voila gets for a viewer's kernel: its first ``client()`` is the warm
    client, already connected."""

    def __init__(self, km: Any, kc: WarmClient | None) -> None:
        self._km = km
        self._kc = kc

    def client(self, **kwargs: Any) -> Any:
        kc, self._kc = self._kc, None
        return kc if kc is not None else self._km.client(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._km, name)


class LiveCapReached(Unavailable):
    def __init__(self, cap: int) -> None:
        super().__init__(
            f"all {cap} live views this server runs at once are in use; try again shortly",
            details={"retry_after_s": RETRY_AFTER_S, "cap": cap},
        )


@dataclass
class Seat:
    """A viewer's place among the live kernels, from admission until their kernel ends."""

    viewer: str
    slug: str
    kernel_id: str | None = None
    released: bool = field(default=False, repr=False)
    rendered: bool = field(default=False, repr=False)


class LiveKernels(AsyncMappingKernelManager):  # type: ignore[misc]
    """The kernels of live views (a kernel manager of their own: never the server's kernels,
    whose environment carries the server user's token)."""

    def setup(
        self,
        *,
        tokens: TokenSigner,
        server_url: str,
        cap: int,
        pool_size: int,
        idle_timeout_s: float,
        preload: list[str],
        kernel_name: str = "python3",
    ) -> None:
        self.tokens = tokens
        self.server_url = server_url
        self.cap = max(1, cap)
        self.pool_size = max(0, min(pool_size, self.cap))
        self.preload = list(preload)
        self.pool_kernel_name = kernel_name
        self.cull_idle_timeout = max(1, int(idle_timeout_s))
        self.cull_interval = max(1, min(30, int(idle_timeout_s) // 2 or 1))
        self.cull_connected = True  # a page left open and untouched counts as idle
        self.cull_busy = False
        self._ready: list[str] = []  # started, warm, never handed out
        self._clients: dict[str, WarmClient] = {}  # their connected clients, until Voila's
        self._starting = 0
        self._seats: dict[str, Seat] = {}  # kernel id -> its viewer's seat
        self._admitted = 0  # seats, with or without their kernel yet
        # Pages being executed and rendered now: ready kernels are started between them, so a
        # burst of viewers never shares the CPU with kernel starts.
        self._rendering = 0
        self._filling: asyncio.Task[None] | None = None
        self._closed = False

    # -- what others ask --------------------------------------------------------------------
    def alive(self, kernel_id: str) -> bool:
        """Whether ``kernel_id`` is a viewer's live kernel (its token is good while it is)."""
        return kernel_id in self._seats and kernel_id in self

    def viewer_of(self, kernel_id: str) -> str | None:
        seat = self._seats.get(kernel_id)
        return seat.viewer if seat is not None and kernel_id in self else None

    def counts(self) -> dict[str, int]:
        return {"ready": len(self._ready), "starting": self._starting,
                "in_use": self._admitted, "cap": self.cap}  # fmt: skip

    # -- admission ----------------------------------------------------------------------------
    def admit(self, viewer: str, slug: str) -> Seat:
        """A seat for a viewer, or :class:`LiveCapReached`; :meth:`rendered` once its page is
        written."""
        if self._admitted >= self.cap:
            raise LiveCapReached(self.cap)
        self._admitted += 1
        self._rendering += 1
        return Seat(viewer, slug)

    def rendered(self, seat: Seat) -> None:
        """The seat's page is written (or refused): its kernel now waits for the viewer."""
        if not seat.rendered:
            seat.rendered = True
            self._rendering -= 1
            self.refill()

    def release(self, seat: Seat) -> None:
        if not seat.released:
            seat.released = True
            self._admitted -= 1
            if seat.kernel_id is not None:
                self._seats.pop(seat.kernel_id, None)
            self.refill()

    async def hand_out(
        self, seat: Seat, kernel_name: str, cwd: Path, request_env: dict[str, str]
    ) -> str:
        """The seat's kernel: a ready one (else one started now), given the viewer's token."""
        name = kernel_name or self.pool_kernel_name
        kernel_id = None
        if name == self.pool_kernel_name:
            while self._ready:
                candidate = self._ready.pop(0)
                if candidate in self:
                    kernel_id = candidate
                    break
        if kernel_id is None:
            kernel_id = await self._start(name)
        seat.kernel_id = kernel_id
        self._seats[kernel_id] = seat
        self.refill()
        token = self.tokens.mint(seat.viewer, "live", kernel_id=kernel_id)
        env = {k: v for k, v in request_env.items() if k in REQUEST_ENV}
        env.update({URL_ENV: self.server_url, TOKEN_ENV: token, "DATAOPS_DASHBOARD": seat.slug,
                    "DATAOPS_VIEWER": seat.viewer})  # fmt: skip
        await self._execute(kernel_id, PREAMBLE.format(env=json.dumps(env), cwd=str(cwd)))
        kernel: Any = self.get_kernel(kernel_id)
        from jupyter_server._tz import utcnow

        kernel.last_activity = utcnow()  # its idle time starts now, not when it was started
        return kernel_id

    # -- the pool -----------------------------------------------------------------------------
    def refill(self) -> None:
        """Start ready kernels (one at a time, in the background) up to the pool's size."""
        if self._closed or self.pool_size == 0:
            return
        if self._filling is None or self._filling.done():
            self._filling = asyncio.ensure_future(self._fill())

    def _room(self) -> bool:
        ready = len(self._ready) + self._starting
        return ready < self.pool_size and self._admitted + ready < self.cap

    async def _fill(self) -> None:
        while not self._closed and self._room():
            while self._rendering and self._ready and not self._closed:
                await asyncio.sleep(0.05)  # viewers first, while some kernel is ready
            try:
                kernel_id = await self._start(self.pool_kernel_name)
            except Exception:
                log.exception("DataOps: cannot start a kernel for the live views")
                return
            if self._closed:
                return
            self._ready.append(kernel_id)

    async def _start(self, kernel_name: str) -> str:
        env = {k: v for k, v in os.environ.items() if k not in WITHHELD_ENV}
        env[URL_ENV] = self.server_url
        self._starting += 1
        try:
            kernel_id = await super().start_kernel(kernel_name=kernel_name, env=env)
            if self.preload:
                code = "\n".join(f"import {m}" for m in self.preload)
                try:
                    await self._execute(kernel_id, code)
                except Exception:
                    self._drop_client(kernel_id)
                    await super().shutdown_kernel(kernel_id, now=True)  # never left running
                    raise
        finally:
            self._starting -= 1
        return kernel_id

    def _client(self, kernel_id: str) -> WarmClient:
        kc = self._clients.get(kernel_id)
        if kc is None:
            km: Any = self.get_kernel(kernel_id)
            kw = km.get_connection_info(session=True)
            kw.update(connection_file=km.connection_file, parent=km)
            kc = self._clients[kernel_id] = WarmClient(**kw)
            kc.start_channels(hb=False)  # Voila's executor starts the heartbeat
        return kc

    async def _execute(self, kernel_id: str, code: str) -> None:
        kc = self._client(kernel_id)
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute_interactive(code, store_history=False, silent=True, timeout=60)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(
                f"a live kernel's set-up failed: {reply['content'].get('evalue', '')}"
            )

    def for_voila(self, kernel_id: str) -> _KernelForVoila:
        """The kernel's manager for Voila, whose first client is the warm one."""
        return _KernelForVoila(self.get_kernel(kernel_id), self._clients.pop(kernel_id, None))

    def _drop_client(self, kernel_id: str) -> None:
        kc = self._clients.pop(kernel_id, None)
        if kc is not None:
            kc.stop_channels()

    # -- the kernel manager's own ---------------------------------------------------------------
    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        if kernel_id in self._ready:
            return  # waiting for a viewer is not idling
        await super().cull_kernel_if_idle(kernel_id)

    async def shutdown_kernel(  # type: ignore[override]
        self, kernel_id: str, now: bool = False, restart: bool = False
    ) -> None:
        seat = self._seats.get(kernel_id)
        if kernel_id in self._ready:
            self._ready.remove(kernel_id)
        self._drop_client(kernel_id)
        await super().shutdown_kernel(kernel_id, now=now, restart=restart)
        if seat is not None and not restart:
            self.release(seat)

    async def start(self) -> None:
        self.initialize_culler()
        self.refill()

    async def stop(self) -> None:
        self._closed = True
        if self._filling is not None:
            self._filling.cancel()
        for kernel_id in list(self._clients):
            self._drop_client(kernel_id)
        # One by one: a kernel that ends (or fails to start) meanwhile is gone already, and
        # must not keep the others running.
        for kernel_id in list(self.list_kernel_ids()):
            try:
                await self.shutdown_kernel(kernel_id, now=True)
            except Exception as e:
                self.log.debug("DataOps: live kernel %s at stop: %s", kernel_id, e)
        # The kernels' zmq context is this manager's own: end it here, on the loop, once
        # nothing uses it. Left to the garbage collector, MultiKernelManager.__del__ ends it in
        # whatever thread collects it, where zmq's term() can block for good on a socket that
        # Voila's client still holds (and with it any lock that thread held).
        if getattr(self, "_created_context", False):
            self._created_context = False
            self.context.destroy(linger=0)
