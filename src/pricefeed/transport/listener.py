"""What the connections of one face on one port share: codec, session factory, limits, metrics, the sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..contracts import CloseCode, Codec, Handshake
from ..metrics import Metrics
from ..policy import ANY_ORIGIN, OPEN, OPEN_POLICY, AccessPolicy, Admission, OriginPolicy, Refusal, log_refusal
from .connection import Connection, SessionFactory
from .limits import ConnectionLimits

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0


class Listener:
    """The connections of one face; a sweep closes the ones that stopped reading even when nothing is sent."""

    def __init__(self, face: str, codec: Codec, session_factory: SessionFactory, limits: ConnectionLimits,
                 metrics: Metrics, wrap: Callable[[Codec], Codec] = lambda codec: codec,
                 origin_policy: OriginPolicy = ANY_ORIGIN) -> None:
        self.face = face
        self.origin_policy = origin_policy
        """Browser origins allowed to connect (a refused handshake gets 403)."""
        self._wrap = wrap
        self._wire_codecs: dict[Codec, Codec] = {}
        self.codec = self.wire_codec(codec)
        self.session_factory = session_factory
        self.limits = limits
        self.connections: set[Connection] = set()
        self._connected = metrics.connections.labels(face)
        self._slow_closes = metrics.slow_closes.labels(face)
        self._refusals = metrics.refusals
        metrics.queued_bytes.labels(face).set_function(self.queued_bytes)
        self._sweeper: asyncio.Task[None] | None = None
        self._gone = asyncio.Event()
        """Set whenever the last connection goes, so a shutdown can wait for it."""
        self.on_sweep: Callable[[Connection], None] | None = None
        """Per-connection work on each sweep (e.g. the API port's WebSocket pings)."""
        self._warned: set[tuple[str, str, str]] = set()
        self.access: AccessPolicy = OPEN_POLICY
        """Keys and per-IP limits (the service's one policy; the pythd face keeps its publisher keys instead)."""
        self.subprotocol: str | None = None
        """A WebSocket subprotocol this face echoes when a client offers it (e.g. Lazer's ``pyth-lazer-auth``)."""

    def wire_codec(self, codec: Codec) -> Codec:
        """A face's codec as this listener writes it (framed for WebSockets), one instance per codec, so the
        hub encodes each topic once for all connections."""
        wired = self._wire_codecs.get(codec)
        if wired is None:
            wired = self._wire_codecs[codec] = self._wrap(codec)
        return wired

    def attached(self, connection: Connection) -> None:
        self.connections.add(connection)
        self._gone.clear()
        self._connected.inc()
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name=f"{self.face}-sweep")

    def detached(self, connection: Connection) -> None:
        self.access.release(connection.admission)
        if connection in self.connections:
            self.connections.discard(connection)
            self._connected.dec()
        if not self.connections:
            self._gone.set()

    def slow_closed(self, connection: Connection) -> None:
        self._slow_closes.inc()

    def refused(self, reason: str) -> None:
        self._refusals.labels(self.face, reason).inc()

    def admit(self, handshake: Handshake, ip: str | None) -> Admission | Refusal:
        """Let a handshake in (its admission goes to the connection, released when it goes) or refuse it: origin
        (403), key (401, 403), over a key's or an IP's limits (429); refusals are counted, and logged once."""
        origin = handshake.headers.get("origin")
        why = self.origin_policy.refusal(origin, handshake.headers.get("host"))
        if why is not None and origin is not None:
            return self.refused_with(Refusal(403, "origin", why, origin[:200]))
        admitted = self.access.admit(self.face, handshake.headers, handshake.query, ip)
        return self.refused_with(admitted) if isinstance(admitted, Refusal) else admitted

    def admit_stream(self, handshake: Handshake, ip: str | None, feeds: list[str]) -> Admission | Refusal:
        """Let an event stream in (it counts against its key's connections and subscriptions like a socket)."""
        admitted = self.admit(handshake, ip)
        if isinstance(admitted, Refusal):
            return admitted
        refusal = self.access.claim(admitted, feeds)
        if refusal is None:
            return admitted
        self.access.release(admitted)
        return self.refused_with(refusal)

    def admit_ip(self, connection: Connection, ip: str) -> Refusal | None:
        """The IP's limits for a connection let in without a key before its IP was known (picows tells it only
        once connected); the adapter closes a refused one with 1008 and the reason."""
        if connection.admission is not OPEN or self.access.keys_required:
            return None
        admitted = self.access.admit_ip(self.face, ip)
        if isinstance(admitted, Refusal):
            return self.refused_with(admitted)
        connection.admitted(admitted)
        return None

    def refused_with(self, refusal: Refusal) -> Refusal:
        self.refused(refusal.reason)
        log_refusal(self.face, refusal, self._warned)
        return refusal

    def queued_bytes(self) -> int:
        return sum(conn.queued_bytes for conn in self.connections)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            for conn in list(self.connections):
                try:
                    if not conn.check_slow() and not conn.check_byte_budget() and self.on_sweep is not None:
                        self.on_sweep(conn)
                except Exception:  # one broken connection must not stop the sweep
                    log.exception("%s: sweep failed for %s", self.face, conn.client_id)

    async def close_all(self, timeout_s: float = 3.0) -> None:
        """Close every connection with 1001 and wait (at most ``timeout_s``) for them to go."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for conn in list(self.connections):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), timeout_s)
        for conn in list(self.connections):
            conn.abort()
