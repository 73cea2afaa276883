"""One client connection on any socket face, whatever carries it.

A :class:`Connection` is the hub's subscriber and a session's peer. It owns
what every face shares: the conflating outbox with its byte bound, the one
write per hub pass, back-pressure, the slow-client close, the inbound message
size and rate limits, and the close. Adapters (picows, the API port's
WebSocket and SSE) subclass it and supply the socket: ``frame`` (a payload as
wire bytes), ``buffered_bytes`` and ``_close_transport``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Protocol

from ..contracts import CloseCode, Codec, Handshake, Session
from ..policy import OPEN, AccessPolicy, Admission, Refusal
from ..topics import Topic
from .limits import ConnectionLimits, TokenBucket
from .outbox import Outbox

log = logging.getLogger(__name__)

SessionFactory = Callable[["Connection"], Session]


class Owner(Protocol):
    """What a connection needs of the listener it belongs to (``listener.Listener``)."""

    face: str
    codec: Codec
    limits: ConnectionLimits
    session_factory: SessionFactory
    access: AccessPolicy

    def wire_codec(self, codec: Codec) -> Codec: ...

    def attached(self, connection: Connection) -> None: ...

    def detached(self, connection: Connection) -> None: ...

    def slow_closed(self, connection: Connection) -> None: ...

    def refused(self, reason: str) -> None: ...

    def refused_with(self, refusal: Refusal) -> Refusal: ...


class Connection:
    """A client connection: outbox, limits and closing, independent of the socket library."""

    codec: Codec

    def __init__(self, listener: Owner, handshake: Handshake,
                 session_factory: SessionFactory | None = None, admission: Admission = OPEN) -> None:
        self.listener = listener
        self.handshake = handshake
        self.admission = admission
        """The key it presented and the IP it counts against (released by the listener when it goes)."""
        self.codec = listener.codec
        self.limits: ConnectionLimits = listener.limits
        self.client_id = str(uuid.uuid4())
        self.remote = "-"
        self.outbox = Outbox()
        self.connected_at = time.time()
        self.messages_sent = 0
        """Messages written to the socket (one write may carry several)."""
        self.bytes_sent = 0
        """Bytes of those messages (what a byte budget is charged, once per listener sweep)."""
        self._charged = 0
        self._write: Callable[[bytes], None] | None = None
        self._paused_since: float | None = None
        self._closing = False
        key_limits = admission.limits
        rate, burst = self.limits.max_messages_per_second, float(self.limits.message_burst)
        if key_limits.messages_per_second is not None:  # a key's own rate, with two seconds' worth of burst
            rate = min(rate, key_limits.messages_per_second)
            burst = max(1.0, min(burst, 2 * rate))
        self._inbound = TokenBucket(rate, burst)
        self._byte_budget = admission.byte_budget
        """Its key's (or IP's) outbound bytes per second, shared with its other connections, charged what it
        wrote at each listener sweep (not on the write path)."""
        self.session: Session = (session_factory or listener.session_factory)(self)

    # -- what an adapter calls ------------------------------------------------

    def admitted(self, admission: Admission) -> None:
        """Let in by its IP's limits once the IP is known (picows tells it only once connected)."""
        self.admission = admission
        self._byte_budget = admission.byte_budget

    def attach(self, write: Callable[[bytes], None], remote: str) -> None:
        """The socket is open: register with the listener and let the session greet the client."""
        self._write = write
        self.remote = remote
        self.listener.attached(self)
        log.debug("%s client %s connected from %s", self.listener.face, self.client_id, self.remote)
        self.session.opened()
        self.flush()

    def detach(self, why: str) -> None:
        """The socket is gone: unsubscribe everything, drop what was queued."""
        if self._write is None:
            return
        self._write = None
        self._closing = True
        self.outbox.take()
        self.listener.detached(self)
        self.session.closed()
        log.debug("%s client %s disconnected (%s)", self.listener.face, self.client_id, why)

    def receive_message(self, payload: bytes, is_text: bool) -> None:
        """A complete inbound message: apply the rate limit, hand it to the session, flush the replies."""
        if self._closing:
            return
        if not self._inbound.take():
            self.listener.refused("key_messages" if self.admission.limits.messages_per_second is not None
                                  else "messages")
            self.close(CloseCode.POLICY_VIOLATION,
                       f"message rate limit exceeded: at most {self._inbound.rate:g} per second")
            return
        if is_text:
            self.session.receive_text(payload)
        else:
            self.session.receive_binary(payload)
        self.flush()

    def charge(self, cost: float) -> bool:
        """Spend ``cost`` more messages of the rate limit, as far as it goes (a batch's further requests and
        their work); False if not even one was left."""
        return self._inbound.spend(cost)

    def message_too_big(self, size: int) -> bool:
        """Close with 1009 if an inbound message of ``size`` bytes is over the limit."""
        if size <= self.limits.max_message_bytes:
            return False
        self.close(CloseCode.MESSAGE_TOO_BIG, f"message too big: at most {self.limits.max_message_bytes} bytes")
        return True

    def pause_writing(self) -> None:
        self._paused_since = time.monotonic()

    def resume_writing(self) -> None:
        self._paused_since = None
        self.flush()

    # -- the peer interface (faces and hub) -------------------------------------

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        write = self._write
        if self._paused_since is None and write is not None and not self.outbox and not self._closing:
            # The common case, kept to one write: nothing is queued and the socket takes data.
            data = self.render(frames.values())
            write(data)
            self.messages_sent += len(frames)
            self.bytes_sent += len(data)
            return
        put = self.outbox.put
        for topic, frame_bytes in frames.items():
            put(topic, frame_bytes)
        self.flush()

    def lane(self, codec: Codec) -> _Lane:
        return _Lane(self, self.listener.wire_codec(codec))

    def send(self, payload: bytes) -> None:
        self.outbox.put_control(self.frame(payload))

    def send_price(self, topic: Topic, payload: bytes) -> None:
        self.outbox.put(topic, self.frame(payload))

    def discard_price(self, topic: Topic) -> None:
        self.outbox.discard(topic)

    def claim(self, feeds: Iterable[str]) -> str | None:
        """Whether its key may subscribe to ``feeds`` (within its subscription limit): None, counted until
        :meth:`unclaim` or the close; or why not (counted as a refusal), for the face's own error."""
        if self.admission.key is None:
            return None
        refusal = self.listener.access.claim(self.admission, feeds)
        return None if refusal is None else self.listener.refused_with(refusal).message

    def unclaim(self, feeds: Iterable[str]) -> None:
        if self.admission.key is not None:
            self.listener.access.unclaim(self.admission, feeds)

    def flush(self) -> None:
        """Write everything pending in one write, unless the socket is backed up (then check the bounds)."""
        write = self._write
        if write is None or self._closing or not self.outbox:
            return
        if self._paused_since is not None:
            self.check_slow()
            return
        frames = self.outbox.take_frames()
        data = self.render(frames)
        write(data)
        self.messages_sent += len(frames)
        self.bytes_sent += len(data)

    def check_byte_budget(self) -> bool:
        """Charge its key's (or IP's) byte budget what it wrote since the last check, and close it with 1008 if
        that overdraws the budget; True if it was closed. The listener's sweep calls it once a second, so the
        write path pays nothing for a budget."""
        budget = self._byte_budget
        if budget is None or self._closing:
            return False
        spent, self._charged = self.bytes_sent - self._charged, self.bytes_sent
        if budget.spend(spent):
            return False
        holder = "key" if self.admission.key is not None else "ip"
        self.listener.refused(f"{holder}_bytes")
        self.close(CloseCode.POLICY_VIOLATION, f"byte rate limit exceeded: at most {budget.rate:g} "
                   f"bytes per second per {'API key' if holder == 'key' else 'client IP'}")
        return True

    def check_slow(self) -> bool:
        """Close a connection that is over its byte bound or blocked too long; True if it was closed."""
        if self._paused_since is None or self._closing:
            return False
        queued = self.queued_bytes
        blocked_for = time.monotonic() - self._paused_since
        if queued > self.limits.outbox_limit_bytes or blocked_for > self.limits.slow_client_timeout_s:
            self.listener.slow_closed(self)
            self.close(CloseCode.POLICY_VIOLATION, "slow consumer: not reading fast enough", abort=True)
            return True
        return False

    @property
    def queued_bytes(self) -> int:
        """What this connection holds in memory: its outbox plus the socket's write buffer."""
        return self.outbox.pending_bytes + self.buffered_bytes()

    @property
    def closing(self) -> bool:
        return self._closing

    def close(self, code: int, reason: str, *, abort: bool = False) -> None:
        if self._closing or self._write is None:
            return
        self._closing = True
        log.debug("closing %s client %s: %s %s", self.listener.face, self.client_id, code, reason)
        self.outbox.take()
        self._close_transport(code, reason, abort)

    def stop_sending(self) -> None:
        """The peer is closing (its close frame arrived): nothing more may be written, queued data is dropped."""
        self._closing = True
        self.outbox.take()

    def abort(self) -> None:
        """Drop the connection now, without waiting for the peer (shutdown's last resort)."""
        if self._write is not None:
            self._closing = True
            self._close_transport(CloseCode.GOING_AWAY, "server shutting down", True)

    # -- what an adapter supplies ------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        """One outbound message as the bytes to write."""
        raise NotImplementedError

    def render(self, frames: Iterable[bytes]) -> bytes:
        """Queued frames as one buffer for one write."""
        return b"".join(frames)

    def buffered_bytes(self) -> int:
        """Bytes the socket has accepted but not yet sent."""
        raise NotImplementedError

    def _close_transport(self, code: int, reason: str, abort: bool) -> None:
        raise NotImplementedError


class _Lane:
    """A subscriber with its own wire format that delivers into a connection."""

    __slots__ = ("codec", "connection")

    def __init__(self, connection: Connection, codec: Codec) -> None:
        self.connection = connection
        self.codec = codec

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        self.connection.deliver(frames)
