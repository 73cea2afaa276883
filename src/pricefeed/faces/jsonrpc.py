"""The pythd / pyth-agent WebSocket JSON-RPC 2.0 API (seed 001), without I/O.

Publishing software written for pythd or pyth-agent speaks to this unchanged:
the six methods, pythd's result shapes and key orders, batches answered with
one array in order (``[]`` gets ``[]``), ``params: []`` where none are needed,
binary frames ignored, and ``update_price`` as the agent takes it (numbers
rounded, ``null`` as 0, a quote for an account the publisher may not quote
answered ``0`` and dropped). Errors carry pythd's JSON-RPC codes and a message
that says what was wrong. A request without an id is run and never answered,
so a client never sees an id it did not send.

Who may connect, and as which publisher, is :mod:`.rpc_access`'s. A batch is
bounded in requests and reply bytes, and each of its requests pays out of the
connection's message-rate budget as a message would (a large reply more), so
a small message cannot buy a huge reply or hold the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..accounts import parse_publishers, price_account_of
from ..aggregation import QuoteRejected
from ..contracts import CloseCode, Handshake
from ..hub import Hub
from ..metrics import Metrics
from ..model import Feed
from ..products import NotPermitted, Oracle, UnknownAccount
from ..slots import SlotClock
from ..topics import Topic
from ..transport.limits import ConnectionLimits
from ..transport.picows import PicowsConnection, PicowsServer
from .json_types import json_type
from .pythd import Directory
from .rpc_access import Refused, identify, origin_allowed, rpc_origin_policy
from .rpc_notify import PUBLISH_INTERVAL_S, Notifier, RpcPeer, stagger
from .rpc_params import ParamError, shown
from .rpc_params import account as param_account
from .rpc_params import integer as param_integer
from .rpc_params import named as param_named
from .rpc_params import status as param_status

__all__ = ["Handshake", "JsonRpcSession", "Notifier", "PythdApi", "Refused", "create_rpc_server", "identify",
           "origin_allowed", "parse_publishers", "stagger"]

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UNKNOWN_ACCOUNT = -32000
"""pythd's ``PC_JSON_UNKNOWN_SYMBOL``."""
NOT_PERMITTED = -32001
"""pythd's ``PC_JSON_MISSING_PERMS``: this connection speaks for no publisher."""
LIMIT_EXCEEDED = -32005
"""A request of a batch not run: the batch's replies went over their bound (Ethereum's JSON-RPC code for it)."""

METHODS = ("get_product_list", "get_product", "get_all_products", "update_price", "subscribe_price",
           "subscribe_price_sched")
MAX_BATCH_REQUESTS = 1000
"""Requests in one batch; a larger batch is refused whole."""
MAX_BATCH_REPLY_BYTES = 256 * 1024
"""Once a batch's replies reach this, its remaining requests are not run (rendering this much takes ~40 ms)."""
REPLY_BYTES_PER_MESSAGE = 256
"""In a batch, a reply costs one message of the rate budget per this many bytes beyond the first this many."""
_MAX_WARNED = 10_000
"""Publisher/account pairs whose refusal is logged at warning level (a bound, since keys are free to make up)."""
_I64 = 2**63
_U64 = 2**64


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- the API ----------------------------------------------------------------------


@dataclass(slots=True)
class PythdApi:
    """What all sessions share: the accounts, the oracle, the publishers and the subscriptions."""

    hub: Hub
    oracle: Oracle | None
    publishers: Mapping[str, str | None]
    directory: Directory
    notifier: Notifier
    origins: tuple[str, ...] = ()
    """Browser origins allowed to connect (``--rpc-origins``)."""
    refused_updates: int = 0
    """``update_price`` calls answered 0 and dropped: the publisher may not quote the account."""
    _warned: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def create(cls, hub: Hub, oracle: Oracle | None, publishers: Mapping[str, str | None] | None = None,
               publish_interval_s: float = PUBLISH_INTERVAL_S, origins: Collection[str] = (),
               slot_clock: SlotClock | None = None) -> PythdApi:
        directory = Directory(hub, oracle, slot_clock)
        return cls(hub, oracle, dict(publishers or {}), directory,
                   Notifier(hub, directory, oracle, publish_interval_s), tuple(origins))

    def refuse(self, publisher: str, account: str, symbol: str, why: str) -> None:
        """Count an unpermitted quote; log it once per publisher and account (a publisher's loop repeats it)."""
        self.refused_updates += 1
        first = (publisher, account) not in self._warned and len(self._warned) < _MAX_WARNED
        if first:
            self._warned.add((publisher, account))
        # The fields as pyth-agent logs them (JSON), so what watches the agent's log finds the same line.
        fields = {"publisher": publisher, "unpermissioned_price_account": account, "symbol": symbol, "reason": why}
        log.log(logging.WARNING if first else logging.DEBUG,
                "Attempted to publish a price without permission, skipping %s", orjson.dumps(fields).decode())

    def status(self) -> dict[str, Any]:
        return {"subscriptions": self.notifier.subscription_count(), "refused_updates": self.refused_updates,
                "browser_origins": list(self.origins)}


def _response(request_id: object, result: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "result": result, "id": request_id})


def _error(request_id: object, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id})


def _valid_id(request_id: object) -> bool:
    return not isinstance(request_id, bool) and isinstance(request_id, str | int | float | None)


class JsonRpcSession:
    """The protocol state of one connection."""

    def __init__(self, api: PythdApi, peer: RpcPeer, handshake: Callable[[], Handshake], client: str = "-") -> None:
        self.api = api
        self.client = client
        self.peer = peer
        self._handshake = handshake
        self.publisher: str | None = None
        self._after_reply: list[Callable[[], None]] = []
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
            self._receive_batch(message)
        else:
            reply = self._handle(message)
            if reply is not None:
                self.peer.send(reply)
        after, self._after_reply = self._after_reply, []
        for action in after:
            action()

    def _receive_batch(self, batch: list[object]) -> None:
        """Run a batch in order and answer one array, within its bounds (see the module's docstring)."""
        if len(batch) > MAX_BATCH_REQUESTS:
            self.peer.send(_error(None, INVALID_REQUEST, f"invalid request: a batch holds at most "
                                                         f"{MAX_BATCH_REQUESTS} requests, got {len(batch)}"))
            return
        replies: list[bytes] = []
        size, work = 0, 0.0
        for index, request in enumerate(batch):
            # The message paid for the first request; each further one pays as a message of its own, plus the
            # work of the reply before it. A batch that overspends is a flood, closed as the transport closes one.
            if index and not self.peer.charge(1.0 + work):
                self.peer.close(CloseCode.POLICY_VIOLATION, "message rate limit exceeded: each request of a "
                                                              "batch counts as a message")
                return
            if size >= MAX_BATCH_REPLY_BYTES:
                reply = _not_run(request, f"request not run: this batch's replies reached {MAX_BATCH_REPLY_BYTES} "
                                          f"bytes; send fewer requests per batch")
            else:
                reply = self._handle(request)
            work = 0.0 if reply is None else max(0, len(reply) - REPLY_BYTES_PER_MESSAGE) / REPLY_BYTES_PER_MESSAGE
            if reply is not None:
                replies.append(reply)
                size += len(reply)
        if replies or not batch:  # [] answers [] (clients wait for an array); all-notifications answer nothing
            self.peer.send(b"[" + b",".join(replies) + b"]")

    def _handle(self, request: object) -> bytes | None:
        """The reply to one request, or None for a notification (a request without an id)."""
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, f"invalid request: expected a JSON-RPC request object, "
                                                 f"got {json_type(request)}")
        has_id = "id" in request
        request_id = request.get("id")
        if not _valid_id(request_id):
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
        except ParamError as exc:
            return _error(request_id, INVALID_PARAMS, str(exc)) if has_id else None
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
            raise RpcError(METHOD_NOT_FOUND, f"method not found: {shown(method)}; expected one of "
                                             f"{', '.join(METHODS)}")
        if params is not None and not isinstance(params, dict | list):
            raise RpcError(INVALID_PARAMS, f"invalid params: must be an object or an array, got {json_type(params)}")
        return handler(params)

    # -- methods ------------------------------------------------------------------

    def _get_product_list(self, params: object) -> object:
        directory = self.api.directory
        return [directory.product_list_entry(feed) for feed in directory.feeds()]

    def _get_all_products(self, params: object) -> object:
        directory = self.api.directory
        return [directory.product(feed) for feed in directory.feeds()]

    def _get_product(self, params: object) -> object:
        account = param_account(param_named("get_product", params, ("account",))["account"])
        feed = self.api.directory.feed_of_product_account(account)
        if feed is None:
            hint = " (that is a price account)" if self.api.directory.feed_of_price_account(account) else ""
            raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no product account {account}{hint}")
        return self.api.directory.product(feed)

    def _update_price(self, params: object) -> object:
        """0 for every quote a publisher may send, as pyth-agent answers; what becomes of it is the oracle's."""
        args = param_named("update_price", params, ("account", "price", "conf", "status"))
        account = param_account(args["account"])
        price = param_integer("price", args["price"], -_I64, _I64 - 1)
        conf = param_integer("conf", args["conf"], 0, _U64 - 1)
        status = param_status(args["status"])
        if self.publisher is None:
            raise RpcError(NOT_PERMITTED, "this connection presented no publisher key: connect with ?publisher=KEY "
                                          "(and &secret=... if configured) or the X-Publisher-Key header")
        api = self.api
        product = api.directory.local(account)
        if product is None:
            feed = api.directory.feed_of_price_account(account)
            if feed is None:
                raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no price account {account}")
            api.refuse(self.publisher, account, feed.symbol, f"read-only, its prices come from {feed.source}")
            return 0
        assert api.oracle is not None  # a local product implies the oracle
        try:
            api.oracle.quote(self.publisher, account, price, conf, status)
        except NotPermitted:
            api.refuse(self.publisher, account, product.spec.symbol, "not a permitted publisher of it")
        except UnknownAccount:
            raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no price account {account}") from None
        except QuoteRejected as exc:
            raise RpcError(INTERNAL_ERROR, f"quote not stored: {exc}") from None
        return 0

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
        account = param_account(param_named(method, params, ("account",))["account"])
        feed = self.api.directory.feed_of_price_account(account)
        if feed is None:
            raise RpcError(UNKNOWN_ACCOUNT, f"unknown symbol: no price account {account}")
        return feed


def _not_run(request: object, why: str) -> bytes | None:
    """The error entry of a batch request that was not run (none for a notification)."""
    if isinstance(request, dict):
        if "id" not in request:
            return None
        request_id = request["id"]
        return _error(request_id if _valid_id(request_id) else None, LIMIT_EXCEEDED, why)
    return _error(None, LIMIT_EXCEEDED, why)


# -- the listener ---------------------------------------------------------------------


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
        return JsonRpcSession(api, conn, lambda: conn.handshake, conn.client_id)

    return PicowsServer("pythd", _NotAHubSubscriber(), session, limits, metrics,
                        origin_policy=rpc_origin_policy(api.origins))
