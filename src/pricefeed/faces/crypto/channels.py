"""The Socket.IO side of ``crypto-prices``: subscribe and unsubscribe, errors, and one encoding per broadcast.

Clients emit ``subscribe`` / ``unsubscribe`` with ``{"channel": "crypto-prices"}``
(or ``crypto-prices:BTC`` for one coin). A subscriber gets the current array at
once, then the array again whenever a price of its channel changes or a coin
turns stale or fresh. Bad input gets an ``error`` event (and a negative ack if
the client asked for one); the connection goes on.

A broadcast encodes its packet once and puts the same Engine.IO packet in each
subscriber's queue, where python-socketio's own ``emit`` to a room starts one
task per recipient. A client whose queue grows past ``max_queued`` packets is
not reading: it is disconnected instead of holding memory.

With a :class:`~.recovery.RecoveryLog`, connection state recovery as
socket.io v4.6 defines it (see ``recovery.py``): each ``crypto-prices`` event
carries its offset (the subscription's first array the latest offset), and a
client whose link failed gets what it missed on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import socketio
from engineio import packet as eio_packet

from ...coins import Coin
from ...model import FeedId, PriceUpdate
from .access import SocketIoAccess
from .hub_link import HubLink
from .prices import ALL_COINS, CoinFeeds, Snapshot, coin_channel, encode_event, event_head
from .recovery import KEPT_REASONS, RecoveringServer, RecoveryLog, with_offset

log = logging.getLogger(__name__)

NAMESPACE = "/"


class CryptoChannels:
    def __init__(self, link: HubLink, coins: Sequence[Coin], *, cors_origins: Sequence[str] = ("*",),
                 max_message_bytes: int = 64 * 1024, ping_interval_s: float = 10.0, ping_timeout_s: float = 20.0,
                 max_queued: int = 64, stale_check_s: float = 1.0, access: SocketIoAccess | None = None,
                 recovery: RecoveryLog | None = None) -> None:
        origins: str | list[str] = "*" if "*" in cors_origins else list(cors_origins)
        server = socketio.AsyncServer if recovery is None else RecoveringServer
        self.sio = server(async_mode="asgi", cors_allowed_origins=origins,
                          ping_interval=ping_interval_s, ping_timeout=ping_timeout_s,
                          max_http_buffer_size=max_message_bytes)
        self.recovery = recovery
        self._sessions: dict[str, tuple[str, tuple[str, ...], list[str]]] = {}
        """sid -> its pid, restored rooms and missed packets, from its connect until its CONNECT answer."""
        self._pid_of: dict[str, str] = {}
        self.link = link
        self.coins = CoinFeeds(coins)
        self.snapshot = Snapshot(self.coins, link.feeds, link.latest, link.is_stale)
        self.max_queued = max_queued
        self.stale_check_s = stale_check_s
        self.broadcasts = 0
        self.deliveries = 0
        self.slow_disconnected = 0
        self._symbol_of: dict[FeedId, str] = {}
        self._resolved: dict[str, FeedId] | None = None
        self._changed: set[str] = set()
        self._flush_scheduled = False
        self._flags: tuple[tuple[str, bool], ...] = ()
        self._ticker: asyncio.Task[None] | None = None
        self._running = False
        self.sio.on("subscribe", self._subscribe)
        self.sio.on("unsubscribe", self._unsubscribe)
        self.sio.on("*", self._unknown_event)
        self.access = access
        if access is not None or recovery is not None:  # keys, per-IP limits or recovery: a session's life matters
            self.sio.on("connect", self._connect)
            self.sio.on("disconnect", self._disconnect)
        if recovery is not None:
            self.sio.on_connect_packet = self._connect_packet
        link.on_updates(self._on_updates)

    def start(self) -> None:
        self._running = True
        self._flags = self.snapshot.stale_flags()
        self._ticker = asyncio.create_task(self._watch_staleness(), name="crypto-stale-watch")

    async def stop(self) -> None:
        self._running = False
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)

    # -- client events

    async def _subscribe(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        channel, error = self._channel_of("subscribe", data, extra)
        if error is not None:
            return await self._reject(sid, error)
        symbols = None if channel == ALL_COINS else [channel.split(":", 1)[1]]
        refused = None if self.access is None else self.access.claim(sid, self._feeds_of(symbols))
        if refused is not None:
            return await self._reject(sid, refused)
        await self.sio.enter_room(sid, channel)
        objects = self.snapshot.objects(symbols)
        recovery = self.recovery
        self._send_to(sid, encode_event(objects) if recovery is None else
                      with_offset(event_head(objects), recovery.last_offset))  # it has seen up to now
        return {"ok": True, "channel": channel}

    # -- connection state recovery

    async def _connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        """Let the session in (or refuse it: the policy raises), and find what it had if it comes back."""
        if self.access is not None:
            self.access.connect(sid, environ, auth)
        if self.recovery is None:
            return
        pid, offset = (auth.get("pid"), auth.get("offset")) if isinstance(auth, dict) else (None, None)
        restored = self.recovery.restore(pid, offset)
        if restored is not None and self.access is not None:
            rooms = restored[0]
            if self.access.claim(sid, self._feeds_of(None if ALL_COINS in rooms else
                                                      [room.split(":", 1)[1] for room in rooms])) is not None:
                restored = None  # the key may no longer see those coins: a fresh session
        if restored is None:
            self._sessions[sid] = (self.recovery.new_pid(), (), [])
        else:
            assert isinstance(pid, str)
            self._sessions[sid] = (pid, *restored)

    def _connect_packet(self, sid: str) -> tuple[str, list[str]]:
        """The CONNECT answer is going out: back into the restored rooms; the pid and the missed packets."""
        pid, rooms, missed = self._sessions.pop(sid, (RecoveryLog.new_pid(), (), []))
        for room in rooms:
            self.sio.manager.basic_enter_room(sid, NAMESPACE, room)
        self._pid_of[sid] = pid
        return pid, missed

    async def _disconnect(self, sid: str, reason: str = "") -> None:
        if self.access is not None:
            self.access.disconnect(sid)
        if self.recovery is None:
            return
        self._sessions.pop(sid, None)
        pid = self._pid_of.pop(sid, None)
        if pid is not None and reason in KEPT_REASONS:
            channels = set(self.coins.channels)
            self.recovery.keep(pid, [room for room in self.sio.rooms(sid) if room in channels])

    async def _unsubscribe(self, sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        channel, error = self._channel_of("unsubscribe", data, extra)
        if error is not None:
            return await self._reject(sid, error)
        await self.sio.leave_room(sid, channel)
        return {"ok": True, "channel": channel}

    def _feeds_of(self, symbols: list[str] | None) -> list[FeedId]:
        """The feeds behind a channel's coins (every coin's for ``crypto-prices``)."""
        resolved = self.coins.resolve(self.link.feeds())
        return list(resolved.values()) if symbols is None else [resolved[s] for s in symbols if s in resolved]

    async def _unknown_event(self, event: str, sid: str, *data: Any) -> dict[str, Any]:
        return await self._reject(sid, f"unknown event {event!r}: emit subscribe or unsubscribe with "
                                       f'{{"channel": "{ALL_COINS}"}}')

    async def _reject(self, sid: str, message: str) -> dict[str, Any]:
        await self.sio.emit("error", {"message": message}, to=sid)
        return {"ok": False, "error": message}

    def _channel_of(self, event: str, data: Any, extra: tuple[Any, ...]) -> tuple[str, str | None]:
        usage = f'{event} expects one object such as {{"channel": "{ALL_COINS}"}}'
        if extra or not isinstance(data, dict):
            shown = "nothing" if data is None else f"{len(extra) + 1} arguments" if extra else _kind(data)
            return "", f"{usage}, got {shown}"
        channel = data.get("channel")
        if not isinstance(channel, str):
            return "", f"{usage}: 'channel' is {'missing' if 'channel' not in data else _kind(channel)}"
        if channel not in self.coins.channels:
            return "", f"unknown channel {channel[:80]!r}: channels are {', '.join(self.coins.channels)}"
        return channel, None

    # -- broadcasts

    def _on_updates(self, updates: list[PriceUpdate]) -> None:
        if not self._running:
            return
        resolved = self.coins.resolve(self.link.feeds())
        if resolved is not self._resolved:
            self._resolved = resolved
            self._symbol_of = {feed_id: symbol for symbol, feed_id in resolved.items()}
        symbol_of = self._symbol_of
        changed = {symbol_of[u.feed_id] for u in updates if u.feed_id in symbol_of}
        if changed:
            self._changed |= changed
            if not self._flush_scheduled:  # one broadcast per loop iteration, however many passes came
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        changed, self._changed = self._changed, set()
        self.broadcast(changed)

    def broadcast(self, symbols: set[str]) -> None:
        """Send the whole array to ``crypto-prices`` and each changed coin to its own channel."""
        rooms = self.sio.manager.rooms.get(NAMESPACE, {})
        objects = self.snapshot.objects()
        self._flags = tuple((o["symbol"], o["stale"]) for o in objects)
        awaited = set() if self.recovery is None else self.recovery.awaited_rooms()  # their clients come back
        if rooms.get(ALL_COINS) or ALL_COINS in awaited:
            self._send_room(ALL_COINS, self._event(ALL_COINS, objects))
        for obj in objects:
            channel = coin_channel(obj["symbol"])
            if obj["symbol"] in symbols and (rooms.get(channel) or channel in awaited):
                self._send_room(channel, self._event(channel, [obj]))
        self.broadcasts += 1

    def _event(self, room: str, objects: list[dict[str, Any]]) -> str:
        """A broadcast's packet: logged with its offset when recovery is on."""
        if self.recovery is None:
            return encode_event(objects)
        return self.recovery.record(room, event_head(objects))

    async def _watch_staleness(self) -> None:
        """Broadcast when a coin turns stale (its upstream went quiet) or fresh again without a new price."""
        while True:
            await asyncio.sleep(self.stale_check_s)
            flags = self.snapshot.stale_flags()
            if flags != self._flags:
                self.broadcast({symbol for (symbol, stale), old in _pairs(flags, self._flags) if stale != old})

    def _send_room(self, room: str, text: str) -> None:
        pkt = eio_packet.Packet(eio_packet.MESSAGE, text)  # encoded once (its encode cache), shared by every queue
        sockets = self.sio.eio.sockets
        for sid, eio_sid in self.sio.manager.get_participants(NAMESPACE, room):
            socket = sockets.get(eio_sid)
            if socket is not None:
                self._enqueue(sid, socket, pkt)

    def _send_to(self, sid: str, text: str) -> None:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if socket is not None:
            self._enqueue(sid, socket, eio_packet.Packet(eio_packet.MESSAGE, text))

    def _enqueue(self, sid: str, socket: Any, pkt: eio_packet.Packet) -> None:
        if socket.closed or socket.closing:
            return
        if socket.queue.qsize() >= self.max_queued:
            self.slow_disconnected += 1
            log.info("crypto-prices: disconnecting %s, %d packets behind", sid, socket.queue.qsize())
            task = asyncio.create_task(self.sio.disconnect(sid))
            task.add_done_callback(_log_failure)
            return
        socket.queue.put_nowait(pkt)
        self.deliveries += 1

    def status(self) -> dict[str, Any]:
        rooms = self.sio.manager.rooms.get(NAMESPACE, {})
        return {
            "connections": len(self.sio.eio.sockets),
            "subscribers": {room: len(rooms[room]) for room in self.coins.channels if rooms.get(room)},
            "coins_served": sorted(self.coins.resolve(self.link.feeds())),
            "broadcasts": self.broadcasts,
            "deliveries": self.deliveries,
            "slow_disconnected": self.slow_disconnected,
            **({} if self.recovery is None else {"recovered": self.recovery.recovered}),
        }


def _pairs(new: tuple[tuple[str, bool], ...], old: tuple[tuple[str, bool], ...]) -> list[tuple[tuple[str, bool], Any]]:
    previous = dict(old)
    return [(flag, previous.get(flag[0])) for flag in new]


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _log_failure(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        if (exc := task.exception()) is not None:
            log.warning("crypto-prices: disconnecting a slow client failed: %s", exc)
