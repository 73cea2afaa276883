"""pythd's notifications: ``notify_price`` and ``notify_price_sched`` for every connection's subscriptions.

Local accounts notify on every aggregate (as pythd does, even one that repeats
the last); upstream feeds on every update the hub accepts. A result is
rendered once, and only the subscription id differs per subscriber.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import orjson

from ..accounts import parse_key, price_account_of
from ..contracts import Codec
from ..hub import Hub
from ..model import Feed, FeedId, PriceUpdate
from ..products import LocalProduct, Oracle
from ..topics import Topic
from .pythd import Directory

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 1.0
"""pythd's ``-i`` default: how often ``notify_price_sched`` asks for a price."""
_STAGGER_BUCKETS = 997

class RpcPeer(Protocol):
    """What a session needs of its connection."""

    def send(self, payload: bytes) -> None:
        """Queue a reply (never conflated)."""

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        """Queue a notification, conflated with a pending one of the same key."""

    def flush(self) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def charge(self, cost: float) -> bool:
        """Spend ``cost`` more messages of the connection's rate budget, as far as it goes; False if spent."""


def stagger(price_account: str) -> float:
    """pythd's place of an account within the publish interval, in [0, 1): ``(k64[0] ^ k64[2]) % 997 / 997``."""
    raw = parse_key(price_account)
    k0, k2 = int.from_bytes(raw[0:8], "little"), int.from_bytes(raw[16:24], "little")
    return ((k0 ^ k2) % _STAGGER_BUCKETS) / _STAGGER_BUCKETS


def _notification(method: bytes, params_before_id: bytes, subscription: int) -> bytes:
    return (b'{"jsonrpc":"2.0","method":"' + method + b'","params":{' + params_before_id
            + b'"subscription":' + str(subscription).encode() + b"}}")


class _ResultCodec:
    """Renders a hub update of an upstream feed as a ``notify_price`` result, once for all subscribers."""

    face = "pythd"

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        feed = self.directory.hub.feeds[item.feed_id]
        return orjson.dumps(self.directory.notify_result(feed, price_account_of(feed.id)))


class Notifier:
    """Every connection's ``subscribe_price`` and ``subscribe_price_sched`` subscriptions.

    Local accounts notify on every aggregate (as pythd does, even one that repeats
    the last); upstream feeds on every update the hub accepts. A result is rendered
    once and only the subscription id differs per subscriber.
    """

    def __init__(self, hub: Hub, directory: Directory, oracle: Oracle | None,
                 publish_interval_s: float = PUBLISH_INTERVAL_S) -> None:
        self.hub = hub
        self.directory = directory
        self.publish_interval_s = publish_interval_s
        self.codec: Codec = _ResultCodec(directory)
        self._next_id = 1
        self._price_subs: dict[FeedId, dict[int, RpcPeer]] = {}
        self._sched_subs: dict[str, dict[int, RpcPeer]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        if oracle is not None:
            oracle.add_aggregate_listener(self._aggregated)

    def _new_id(self) -> int:
        # One counter for both kinds and every connection, from 1, as pyth-agent counts.
        sub_id, self._next_id = self._next_id, self._next_id + 1
        return sub_id

    # -- notify_price -----------------------------------------------------------

    def subscribe_price(self, feed: Feed, peer: RpcPeer) -> int:
        sub_id = self._new_id()
        subs = self._price_subs.setdefault(feed.id, {})
        if not subs and self.directory.local(price_account_of(feed.id)) is None:
            self.hub.subscribe(feed.id, self)  # upstream feeds notify through the hub
        subs[sub_id] = peer
        return sub_id

    def send_current(self, feed: Feed, sub_id: int, peer: RpcPeer) -> None:
        """pythd's notification right after subscribing, with the current aggregate."""
        result = orjson.dumps(self.directory.notify_result(feed, price_account_of(feed.id)))
        peer.send_price(f"{feed.id}#{sub_id}", _notification(b"notify_price", b'"result":' + result + b",", sub_id))

    def _aggregated(self, product: LocalProduct) -> None:
        feed = product.feed
        if feed.id in self._price_subs:
            self.deliver({feed.id: orjson.dumps(self.directory.notify_result(feed, product.price_account))})

    # The hub's Subscriber protocol: one Notifier subscribes for all upstream feeds anyone watches.
    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        touched: set[RpcPeer] = set()
        for feed_id, frame in frames.items():
            params = b'"result":' + frame + b","
            for sub_id, peer in self._price_subs.get(feed_id, {}).items():
                peer.send_price(f"{feed_id}#{sub_id}", _notification(b"notify_price", params, sub_id))
                touched.add(peer)
        for peer in touched:
            peer.flush()

    # -- notify_price_sched -----------------------------------------------------

    def subscribe_sched(self, price_account: str, peer: RpcPeer) -> int:
        sub_id = self._new_id()
        self._sched_subs.setdefault(price_account, {})[sub_id] = peer
        if price_account not in self._timers:
            self._schedule(price_account, asyncio.get_running_loop())
        return sub_id

    def interval_of(self, price_account: str) -> float:
        """The product's ``publish_interval`` if it has one, else the API's."""
        product = self.directory.local(price_account)
        interval = None if product is None else product.publish_interval_s
        return interval or self.publish_interval_s

    def _schedule(self, price_account: str, loop: asyncio.AbstractEventLoop) -> None:
        interval = self.interval_of(price_account)
        now = loop.time()
        at = (now // interval) * interval + stagger(price_account) * interval
        if at <= now:
            at += interval
        self._timers[price_account] = loop.call_at(at, self._fire, price_account, loop, at)

    def _fire(self, price_account: str, loop: asyncio.AbstractEventLoop, target: float) -> None:
        subs = self._sched_subs.get(price_account)
        if not subs:
            self._timers.pop(price_account, None)
            return
        for sub_id, peer in subs.items():
            peer.send_price(f"sched#{sub_id}", _notification(b"notify_price_sched", b"", sub_id))
        for peer in set(subs.values()):
            peer.flush()
        # The next tick is one interval after this tick's target, never "the next one after now": a timer may
        # fire a little before its target (uvloop's clock counts whole milliseconds), and the next one after
        # now would be this same target again, a burst of duplicates. Ticks missed in a stall are skipped.
        interval = self.interval_of(price_account)
        at, now = target + interval, loop.time()
        if at <= now:
            at += ((now - at) // interval + 1) * interval
        self._timers[price_account] = loop.call_at(at, self._fire, price_account, loop, at)

    # -- clean-up ---------------------------------------------------------------

    def drop(self, peer: RpcPeer) -> None:
        """End every subscription of a closed connection."""
        for feed_id, subs in list(self._price_subs.items()):
            for sub_id in [s for s, p in subs.items() if p is peer]:
                del subs[sub_id]
            if not subs:
                del self._price_subs[feed_id]
                self.hub.unsubscribe(feed_id, self)
        for account, subs in list(self._sched_subs.items()):
            for sub_id in [s for s, p in subs.items() if p is peer]:
                del subs[sub_id]
            if not subs:
                del self._sched_subs[account]
                timer = self._timers.pop(account, None)
                if timer is not None:
                    timer.cancel()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def subscription_count(self) -> int:
        return sum(map(len, self._price_subs.values())) + sum(map(len, self._sched_subs.values()))


