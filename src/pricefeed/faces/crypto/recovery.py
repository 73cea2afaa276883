"""Socket.IO connection state recovery (socket.io v4.6), built on python-socketio, which has none.

As socket.io defines it: the server's CONNECT answer carries a private id
(``{"sid": ..., "pid": ...}``); every broadcast event carries an offset as its
last argument; a client that lost its transport reconnects with
``auth: {pid, offset}`` (socket.io-client does so by itself) and, if the
server still holds its session, it is back in its rooms and gets every packet
of those rooms after its offset, before anything live, and sees
``socket.recovered === true``. A client that left on purpose (its own or the
server's disconnect), one away longer than ``max_disconnection_s``, or one
whose offset the log no longer holds starts a new session
(``recovered === false``), as socket.io does.

Off by default (``--crypto-recovery``), as in socket.io: the offset is an
extra argument of each event, which a python-socketio client handler taking
one argument would not accept.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

MAX_DISCONNECTION_S = 120.0
"""socket.io's default ``maxDisconnectionDuration``: how long a dropped session and the packets it may miss are
kept."""

KEPT_REASONS = frozenset({"ping timeout", "transport close", "transport error"})
"""Disconnects that keep the session (the link failed); the client's or server's own disconnect does not."""


@dataclass(frozen=True, slots=True)
class _Session:
    rooms: tuple[str, ...]
    until: float


class RecoveryLog:
    """Each broadcast packet with its offset, and the sessions of clients whose link failed, for a while."""

    def __init__(self, max_disconnection_s: float = MAX_DISCONNECTION_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_disconnection_s = max_disconnection_s
        self._clock = clock
        self.last_offset = 0
        self._packets: deque[tuple[int, float, str, str]] = deque()
        """(offset, when, room, the event's text up to its offset)."""
        self._sessions: dict[str, _Session] = {}
        self.recovered = 0

    @staticmethod
    def new_pid() -> str:
        return secrets.token_urlsafe(16)

    def record(self, room: str, event_head: str) -> str:
        """Log a broadcast to ``room``; its packet text with the new offset as the last argument."""
        self.last_offset += 1
        now = self._clock()
        packets = self._packets
        packets.append((self.last_offset, now, room, event_head))
        horizon = now - self.max_disconnection_s
        while packets[0][1] < horizon:
            packets.popleft()
        return with_offset(event_head, self.last_offset)

    def keep(self, pid: str, rooms: Iterable[str]) -> None:
        """A client's link failed: hold its session for ``max_disconnection_s``."""
        now = self._clock()
        self._sessions = {p: s for p, s in self._sessions.items() if s.until > now}
        self._sessions[pid] = _Session(tuple(rooms), now + self.max_disconnection_s)

    def awaited_rooms(self) -> set[str]:
        """The rooms of sessions still awaited: their broadcasts are logged even while no one is in them."""
        now = self._clock()
        return {room for session in self._sessions.values() if session.until > now for room in session.rooms}

    def restore(self, pid: object, offset: object) -> tuple[tuple[str, ...], list[str]] | None:
        """The rooms and the missed packets of the session ``pid`` after ``offset``; None if it cannot be
        recovered (unknown or expired session, an offset the log no longer holds)."""
        if not isinstance(pid, str) or not isinstance(offset, str) or not offset.isdigit():
            return None
        session = self._sessions.pop(pid, None)
        if session is None or session.until < self._clock():
            return None
        seen = int(offset)
        oldest = self._packets[0][0] if self._packets else self.last_offset + 1
        if not oldest - 1 <= seen <= self.last_offset:
            return None
        rooms = set(session.rooms)
        missed = [with_offset(head, off) for off, _, room, head in self._packets if off > seen and room in rooms]
        self.recovered += 1
        return session.rooms, missed


def with_offset(event_head: str, offset: int) -> str:
    """``2["event",data`` + the offset argument + ``]``."""
    return f'{event_head},"{offset}"]'


class RecoveringServer(socketio.AsyncServer):  # type: ignore[misc]  # python-socketio has no type hints
    """An AsyncServer whose CONNECT answer says the session's ``pid`` and is followed at once, before any
    broadcast can slip in, by the restored rooms and the missed packets (see :meth:`_send_packet`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_connect_packet: Callable[[str], tuple[str, list[str]]] | None = None
        """sid -> (its pid, the packets that follow CONNECT); also re-enters the restored rooms."""

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        hook = self.on_connect_packet
        data = pkt.data
        if hook is None or pkt.packet_type != sio_packet.CONNECT or not isinstance(data, dict) or "sid" not in data:
            await super()._send_packet(eio_sid, pkt)
            return
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closed:
            return
        # No await from here on: the CONNECT, the rooms and the replay are one step, so the next broadcast
        # reaches this client after its replay, never before or in between.
        pid, follow = hook(data["sid"])
        data["pid"] = pid
        socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, pkt.encode()))
        for text in follow:
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, text))
