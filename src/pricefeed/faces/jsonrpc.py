"""The pythd / pyth-agent WebSocket JSON-RPC 2.0 API (seed 001), without I/O.

Publishing software written for pythd speaks to this unchanged: the six
methods, pythd's result shapes and key orders, batches answered with one array
in order (``[]`` gets ``[]``), ``params: []`` where none are needed, and
binary frames ignored. Errors carry pythd's JSON-RPC codes and a message that
says what was wrong. A request without an id is run and never answered, so a
client never sees an id it did not send.

Which publisher a connection is comes from its handshake (:class:`Handshake`);
without configured publishers every connection is pythd's one local publisher.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from ..accounts import DEFAULT_PUBLISHER, parse_key, price_account_of
from ..contracts import CloseCode, Codec
from ..hub import Hub
from ..metrics import Metrics
from ..model import Feed, FeedId, PriceUpdate, Status
from ..sources.publishers import LocalOracle, LocalProduct, NotPermitted, QuoteRejected, UnknownAccount
from ..topics import Topic
from ..transport.limits import ConnectionLimits
from ..transport.picows import PicowsConnection, PicowsServer
from .json_types import json_type
from .pythd import Directory

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNKNOWN_ACCOUNT = -32000
"""pythd's ``PC_JSON_UNKNOWN_SYMBOL``."""
NOT_PERMITTED = -32001
"""pythd's ``PC_JSON_MISSING_PERMS``: the publisher may not update this account."""

METHODS = ("get_product_list", "get_product", "get_all_products", "update_price", "subscribe_price",
           "subscribe_price_sched")
PUBLISH_INTERVAL_S = 1.0
"""pythd's ``-i`` default: how often ``notify_price_sched`` asks for a price."""
_STAGGER_BUCKETS = 997
_I64 = 2**63
_U64 = 2**64


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- who is speaking ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a client presented when it connected."""

    path: str = "/"
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, target: str, headers: Mapping[str, str]) -> Handshake:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls(parts.path or "/", query, {k.lower(): v for k, v in headers.items()})

    def credential(self, name: str) -> str | None:
        """``?publisher=`` / ``X-Publisher-Key`` and ``?secret=`` / ``X-Publisher-Secret``."""
        header = {"publisher": "x-publisher-key", "secret": "x-publisher-secret"}[name]
        return self.query.get(name) or self.headers.get(header) or None


class Refused(Exception):
    """The handshake names a publisher it cannot be; the connection is closed with this reason."""


def identify(handshake: Handshake, publishers: Mapping[str, str | None]) -> str | None:
    """The publisher key a connection speaks for, or None for a read-only connection.

    Without configured ``publishers`` a connection is the one local publisher (as
    pythd is), or the key it presents. With them, the key must be configured and
    its secret, if it has one, must match; a connection without a key may read.
    """
    key = handshake.credential("publisher")
    if key is not None:
        try:
            parse_key(key)
        except ValueError as exc:
            raise Refused(f"bad publisher key: {exc}") from None
    if not publishers:
        return key or DEFAULT_PUBLISHER
    if key is None:
        return None
    if key not in publishers:
        raise Refused(f"unknown publisher {key}")
    secret = publishers[key]
    presented = handshake.credential("secret") or ""
    if secret is not None and not hmac.compare_digest(presented.encode(), secret.encode()):
        raise Refused(f"wrong or missing secret for publisher {key}")
    return key


def parse_publishers(entries: list[str]) -> dict[str, str | None]:
    """``KEY`` or ``KEY:SECRET`` entries (the ``--rpc-publisher`` option) as a map; ``ValueError`` if malformed."""
    result: dict[str, str | None] = {}
    for entry in entries:
        key, sep, secret = entry.partition(":")
        parse_key(key)
        result[key] = secret if sep else None
    return result


# -- notifications --------------------------------------------------------------


class RpcPeer(Protocol):
    """What a session needs of its connection."""

    def send(self, payload: bytes) -> None:
        """Queue a reply (never conflated)."""

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        """Queue a notification, conflated with a pending one of the same key."""

    def flush(self) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


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

    def __init__(self, hub: Hub, directory: Directory, oracle: LocalOracle | None,
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

    def _schedule(self, price_account: str, loop: asyncio.AbstractEventLoop) -> None:
        interval = self.publish_interval_s
        now = loop.time()
        at = (now // interval) * interval + stagger(price_account) * interval
        if at <= now:
            at += interval
        self._timers[price_account] = loop.call_at(at, self._fire, price_account, loop)

    def _fire(self, price_account: str, loop: asyncio.AbstractEventLoop) -> None:
        subs = self._sched_subs.get(price_account)
        if not subs:
            self._timers.pop(price_account, None)
            return
        for sub_id, peer in subs.items():
            peer.send_price(f"sched#{sub_id}", _notification(b"notify_price_sched", b"", sub_id))
        for peer in set(subs.values()):
            peer.flush()
        self._schedule(price_account, loop)

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


# -- the API ----------------------------------------------------------------------


@dataclass(slots=True)
class PythdApi:
    """What all sessions share: the accounts, the oracle, the publishers and the subscriptions."""

    hub: Hub
    oracle: LocalOracle | None
    publishers: Mapping[str, str | None]
    directory: Directory
    notifier: Notifier

    @classmethod
    def create(cls, hub: Hub, oracle: LocalOracle | None, publishers: Mapping[str, str | None] | None = None,
               publish_interval_s: float = PUBLISH_INTERVAL_S) -> PythdApi:
        directory = Directory(hub, oracle)
        return cls(hub, oracle, dict(publishers or {}), directory,
                   Notifier(hub, directory, oracle, publish_interval_s))


def _response(request_id: object, result: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "result": result, "id": request_id})


def _error(request_id: object, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id})


class JsonRpcSession:
    """The protocol state of one connection."""

    def __init__(self, api: PythdApi, peer: RpcPeer, handshake: Callable[[], Handshake], client: str = "-") -> None:
        self.api = api
        self.client = client
        self.peer = peer
        self._handshake = handshake
        self.publisher: str | None = None
        self._after_reply: list[Callable[[], None]] = []
        self._refused_accounts: set[str] = set()
        self._methods: dict[str, Callable[[object], object]] = {
            "get_product_list": self._get_product_list,
            "get_product": self._get_product,
            "get_all_products": self._get_all_products,
            "update_price": self._update_price,
            "subscribe_price": self._subscribe_price,
            "subscribe_price_sched": self._subscribe_price_sched,
        }

    def opened(self) -> None:
        handshake = self._handshake()
        if handshake.path != "/":
            self.peer.close(CloseCode.POLICY_VIOLATION, f"no such endpoint {handshake.path}: the API is at /")
            return
        try:
            self.publisher = identify(handshake, self.api.publishers)
        except Refused as exc:
            log.warning("pythd API: refused a connection: %s", exc)
            self.peer.close(CloseCode.POLICY_VIOLATION, str(exc))

    def closed(self) -> None:
        self.api.notifier.drop(self.peer)

    def receive_binary(self, data: bytes) -> None:
        """Ignored, as pyth-agent does: JSON-RPC comes in text frames."""

    def receive_text(self, text: str | bytes) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.peer.send(_error(None, PARSE_ERROR, f"parse error: {exc}"))
            return
        if isinstance(message, list):
            replies = [reply for reply in map(self._handle, message) if reply is not None]
            if replies or not message:  # [] answers [] (clients wait for an array); all-notifications answer nothing
                self.peer.send(b"[" + b",".join(replies) + b"]")
        else:
            reply = self._handle(message)
            if reply is not None:
                self.peer.send(reply)
        after, self._after_reply = self._after_reply, []
        for action in after:
            action()

    def _handle(self, request: object) -> bytes | None:
        """The reply to one request, or None for a notification (a request without an id)."""
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, f"invalid request: expected a JSON-RPC request object, "
                                                 f"got {json_type(request)}")
        has_id = "id" in request
        request_id = request.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, str | int | float | None):
            return _error(None, INVALID_REQUEST, f"invalid request: \"id\" must be a string, a number or null, "
                                                 f"got {json_type(request_id)}")
        reply_id = request_id if has_id else None
        if request.get("jsonrpc", "2.0") != "2.0":
            return _error(reply_id, INVALID_REQUEST, "invalid request: \"jsonrpc\" must be \"2.0\"")
        method = request.get("method")
        if not isinstance(method, str):
            what = "missing \"method\"" if method is None else f"\"method\" must be a string, got {json_type(method)}"
            return _error(reply_id, INVALID_REQUEST, f"invalid request: {what}")
        try:
            result = self._call(method, request.get("params"))
        except RpcError as exc:
            return _error(request_id, exc.code, exc.message) if has_id else None
        except Exception:  # a bug must not take the connection down
            log.exception("pythd API: %s failed", method)
            return _error(request_id, INTERNAL_ERROR, f"internal error in {method}") if has_id else None
        return _response(request_id, result) if has_id else None

    def _call(self, method: str, params: object) -> object:
        handler = self._methods.get(method)
        if handler is None:
            if method in ("notify_price", "notify_price_sched"):
                raise RpcError(METHOD_NOT_FOUND, f"method not found: {method} is a notification the server "
                                                 f"sends, not a method")
            raise RpcError(METHOD_NOT_FOUND, f"method not found: {method!r}; expected one of {', '.join(METHODS)}")
        if params is not None and not isinstance(params, dict | list):
            raise RpcError(INVALID_PARAMS, f"invalid params: must be an object or an array, got {json_type(params)}")
        return handler(params)

    # -- methods ------------------------------------------------------------------

    def _get_product_list(self, params: object) -> object:
        directory = self.api.directory
        return [directory.product_list_entry(feed) for feed in list(self.api.hub.feeds.values())]

    def _get_all_products(self, params: object) -> object:
        directory = self.api.directory
        return [directory.product(feed) for feed in list(self.api.hub.feeds.values())]

    def _get_product(self, params: object) -> object:
        account = _account(_params("get_product", params, ("account",))["account"])
        feed = self.api.directory.feed_of_product_account(account)
        if feed is None:
            hint = " (that is a price account)" if self.api.directory.feed_of_price_account(account) else ""
            raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no product account {account}{hint}")
        return self.api.directory.product(feed)

    def _update_price(self, params: object) -> object:
        args = _params("update_price", params, ("account", "price", "conf", "status"))
        account = _account(args["account"])
        price = _integer("price", args["price"], -_I64, _I64 - 1)
        conf = _integer("conf", args["conf"], 0, _U64 - 1)
        status = _status(args["status"])
        product = self.api.directory.local(account)
        if product is None:
            feed = self.api.directory.feed_of_price_account(account)
            if feed is None:
                raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no price account {account}")
            self._refused(account, f"price account {account} ({feed.symbol}) is read-only: its prices come "
                                   f"from the upstream source {feed.source}")
        if self.publisher is None:
            self._refused(account, "this connection presented no publisher key: connect with ?publisher=KEY "
                                   "(and &secret=... if configured) or the X-Publisher-Key header")
        assert self.api.oracle is not None  # a local product implies the oracle
        try:
            self.api.oracle.quote(self.publisher, account, price, conf, status)
        except (UnknownAccount, NotPermitted, QuoteRejected) as exc:  # the oracle logged it
            raise RpcError(NOT_PERMITTED, str(exc)) from None
        return 0

    def _refused(self, account: str, reason: str) -> NoReturn:
        if account not in self._refused_accounts:  # once per connection and account: a loop must not flood the log
            self._refused_accounts.add(account)
            log.warning("pythd API: refused update_price from %s (publisher %s): %s",
                        self.client, self.publisher, reason)
        raise RpcError(NOT_PERMITTED, reason)

    def _subscribe_price(self, params: object) -> object:
        feed = self._price_feed("subscribe_price", params)
        notifier, peer = self.api.notifier, self.peer
        sub_id = notifier.subscribe_price(feed, peer)
        self._after_reply.append(lambda: notifier.send_current(feed, sub_id, peer))
        return {"subscription": sub_id}

    def _subscribe_price_sched(self, params: object) -> object:
        feed = self._price_feed("subscribe_price_sched", params)
        return {"subscription": self.api.notifier.subscribe_sched(price_account_of(feed.id), self.peer)}

    def _price_feed(self, method: str, params: object) -> Feed:
        account = _account(_params(method, params, ("account",))["account"])
        feed = self.api.directory.feed_of_price_account(account)
        if feed is None:
            raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no price account {account}")
        return feed


# -- parameters ---------------------------------------------------------------------


def _params(method: str, params: object, names: tuple[str, ...]) -> dict[str, object]:
    """Named params as a dict, from an object or (in field order) an array."""
    if params is None or params == []:
        raise RpcError(INVALID_PARAMS, f"invalid params: {method} needs {', '.join(names)}")
    if isinstance(params, list):
        if len(params) > len(names):
            raise RpcError(INVALID_PARAMS, f"invalid params: {method} takes {len(names)} ({', '.join(names)}), "
                                           f"got {len(params)}")
        params = dict(zip(names, params, strict=False))
    assert isinstance(params, dict)
    missing = [name for name in names if name not in params]
    if missing:
        raise RpcError(INVALID_PARAMS, f"invalid params: missing {', '.join(repr(n) for n in missing)}")
    return params


def _account(value: object) -> str:
    try:
        parse_key(value)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"invalid params: {exc}") from None
    assert isinstance(value, str)
    return value


def _integer(name: str, value: object, low: int, high: int) -> int:
    """An integer mantissa; numeric strings and whole floats are taken, as pyth-agent takes them."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise RpcError(INVALID_PARAMS, f"invalid params: {name} must be an integer (the value scaled by "
                                       f"10^price_exponent), got {value!r}")
    if not low <= number <= high:
        raise RpcError(INVALID_PARAMS, f"invalid params: {name} {number} is out of range [{low}, {high}]")
    return number


def _status(value: object) -> Status:
    try:
        if isinstance(value, str):
            return Status(value)
    except ValueError:
        pass
    raise RpcError(INVALID_PARAMS, f"invalid params: status {value!r}: expected one of "
                                       f"{', '.join(s.value for s in Status)}")


# -- the listener ---------------------------------------------------------------------


def handshake_of(conn: PicowsConnection) -> Handshake:
    """The path, query and headers a connection's upgrade request carried."""
    presented = conn.handshake
    return Handshake(presented.path, presented.query, presented.headers)


class _NotAHubSubscriber:
    """JSON-RPC connections get prices through the :class:`Notifier`, never straight from the hub."""

    face = "pythd"

    def encode(self, topic: Topic, item: object) -> bytes:
        raise TypeError("a pythd API connection is not a hub subscriber")


RPC_LIMITS = ConnectionLimits(max_messages_per_second=1000.0, message_burst=2000)
"""pythd clients may send one update_price per account per slot without batching: allow far more than 50/s."""


def create_rpc_server(api: PythdApi, metrics: Metrics, limits: ConnectionLimits = RPC_LIMITS) -> PicowsServer:
    """The pythd API listener; ``await server.start(host, port)`` and ``await server.close()``."""

    def session(conn: object) -> JsonRpcSession:
        assert isinstance(conn, PicowsConnection)
        return JsonRpcSession(api, conn, lambda: handshake_of(conn), conn.client_id)

    return PicowsServer("pythd", _NotAHubSubscriber(), session, limits, metrics)
