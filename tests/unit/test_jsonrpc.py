"""The pythd JSON-RPC API without a socket: a session over a recording peer, a hub and a local oracle."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from picows import WSCloseCode

from pricefeed.accounts import (
    DEFAULT_PUBLISHER,
    derive_key,
    feed_id_of,
    price_account_of,
    product_account_of,
    upstream_publisher_key,
)
from pricefeed.faces.jsonrpc import (
    MAX_BATCH_REPLY_BYTES,
    Handshake,
    JsonRpcSession,
    PythdApi,
    Refused,
    identify,
    origin_allowed,
    parse_publishers,
    stagger,
)
from pricefeed.faces.rpc_access import credential
from pricefeed.model import Feed, FeedId, PriceUpdate, Status
from pricefeed.pipeline import local_pipeline
from pricefeed.sources.publishers import LocalOracle, ProductSpec, SlotClock

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
BTC_PRICE = price_account_of(BTC)
PUB_B = derive_key("publisher", "b")
DEMO = ProductSpec(symbol="Crypto.DEMO/USD", exponent=-5, publishers=(DEFAULT_PUBLISHER, PUB_B),
                   attributes={"asset_type": "Crypto", "quote_currency": "USD"})
DEMO_PRICE = DEMO.account
DEMO_PRODUCT = product_account_of(DEMO_PRICE)


class Peer:
    def __init__(self, budget: float = float("inf")) -> None:
        self.sent: list[Any] = []
        self.closed_with: tuple[WSCloseCode, str] | None = None
        self.budget = budget
        self.charged = 0.0

    def charge(self, cost: float) -> bool:
        if self.budget < 1.0:
            return False
        self.budget = max(0.0, self.budget - cost)
        self.charged += cost
        return True

    def send(self, payload: bytes) -> None:
        self.sent.append(json.loads(payload))

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        self.sent.append(json.loads(payload))

    def flush(self) -> None:
        pass

    def close(self, code: WSCloseCode, reason: str) -> None:
        self.closed_with = (code, reason)

    def take(self) -> list[Any]:
        sent, self.sent = self.sent, []
        return sent


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def next_slot(self) -> None:
        self.t += 1.0


class World:
    def __init__(self, publishers: dict[str, str | None] | None = None) -> None:
        self.pipeline = local_pipeline()
        self.ingest, self.hub = self.pipeline.ingest, self.pipeline.hub
        self.ingest.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "hermes", {"asset_type": "Crypto", "base": "BTC"})])
        self.clock = Clock()
        self.oracle = LocalOracle(self.ingest, products=[DEMO], slot_clock=SlotClock(1.0, self.clock))
        self.api = PythdApi.create(self.hub, self.oracle, publishers, publish_interval_s=0.02)

    def session(self, handshake: Handshake | None = None, budget: float = float("inf")) -> tuple[JsonRpcSession, Peer]:
        peer = Peer(budget)
        session = JsonRpcSession(self.api, peer, lambda: handshake or Handshake())
        session.opened()
        return session, peer


def call(session: JsonRpcSession, peer: Peer, method: str, params: Any = None, request_id: Any = 1) -> Any:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        request["params"] = params
    session.receive_text(json.dumps(request))
    return peer.take()


def raw(session: JsonRpcSession, peer: Peer, text: str) -> list[Any]:
    session.receive_text(text)
    return peer.take()


def error_of(replies: list[Any]) -> tuple[int, str, Any]:
    (reply,) = replies
    assert list(reply) == ["jsonrpc", "error", "id"]
    return reply["error"]["code"], reply["error"]["message"], reply["id"]


# -- products ------------------------------------------------------------------------


def test_get_product_list_in_seed_shape() -> None:
    session, peer = World().session()
    (reply,) = call(session, peer, "get_product_list", [])
    assert list(reply) == ["jsonrpc", "result", "id"] and reply["id"] == 1
    by_symbol = {p["attr_dict"]["symbol"]: p for p in reply["result"]}
    demo = by_symbol["Crypto.DEMO/USD"]
    assert demo == {"account": DEMO_PRODUCT,
                    "attr_dict": {"symbol": "Crypto.DEMO/USD", "asset_type": "Crypto", "quote_currency": "USD"},
                    "price": [{"account": DEMO_PRICE, "price_exponent": -5, "price_type": "price"}]}
    assert list(demo["price"][0]) == ["account", "price_exponent", "price_type"]
    btc = by_symbol["Crypto.BTC/USD"]
    assert btc["price"][0]["account"] == BTC_PRICE
    assert btc["account"] == product_account_of(BTC_PRICE)


async def test_get_product_shows_the_price_account_in_pythd_key_order() -> None:
    world = World()
    session, peer = world.session()
    (reply,) = call(session, peer, "get_product", {"account": DEMO_PRODUCT})
    product = reply["result"]
    assert list(product) == ["account", "attr_dict", "price_accounts"]
    (account,) = product["price_accounts"]
    assert list(account) == ["account", "price_type", "price_exponent", "status", "price", "conf", "twap", "twac",
                             "valid_slot", "pub_slot", "prev_slot", "prev_price", "prev_conf", "publisher_accounts"]
    assert account["status"] == "unknown"
    assert [p["account"] for p in account["publisher_accounts"]] == [DEFAULT_PUBLISHER, PUB_B]
    assert list(account["publisher_accounts"][0]) == ["account", "status", "price", "conf", "slot"]


def test_get_all_products_lists_every_feed() -> None:
    session, peer = World().session()
    (reply,) = call(session, peer, "get_all_products")
    assert {p["price_accounts"][0]["account"] for p in reply["result"]} == {BTC_PRICE, DEMO_PRICE}


async def test_upstream_product_is_an_account_quoted_by_its_upstream_on_the_one_slot_clock() -> None:
    world = World()  # slots of 1 s; the clock reads 1000.0
    world.ingest.publish(PriceUpdate(BTC, 6_000_000, 300, -8, 999_000_000, 5_900_000, 250,
                                  prev_publish_time_us=996_500_000, slot=350_000_077, source="hermes"))
    await asyncio.sleep(0)
    session, peer = world.session()
    (reply,) = call(session, peer, "get_product", {"account": product_account_of(BTC_PRICE)})
    account = reply["result"]["price_accounts"][0]
    assert account == {
        "account": BTC_PRICE, "price_type": "price", "price_exponent": -8, "status": "trading",
        "price": 6_000_000, "conf": 300, "twap": 5_900_000, "twac": 250,
        "valid_slot": 998, "pub_slot": 999, "prev_slot": 996, "prev_price": 6_000_000, "prev_conf": 300,
        "publisher_accounts": [{"account": upstream_publisher_key("hermes"), "status": "trading",
                                "price": 6_000_000, "conf": 300, "slot": 998}]}
    # The local product's slots are read from the same clock.
    call(session, peer, "update_price", {"account": DEMO_PRICE, "price": 42, "conf": 2, "status": "trading"})
    local = call(session, peer, "get_product", {"account": DEMO_PRODUCT})[0]["result"]["price_accounts"][0]
    assert local["pub_slot"] == 1000
    (first,) = call(session, peer, "subscribe_price", {"account": BTC_PRICE})[1:]
    assert first["params"]["result"] == {"price": 6_000_000, "conf": 300, "twap": 5_900_000, "twac": 250,
                                         "status": "trading", "num_qt": 1, "valid_slot": 998, "pub_slot": 999}


def test_upstream_product_without_a_price_or_gone_stale_is_unknown() -> None:
    world = World()
    session, peer = world.session()
    account = call(session, peer, "get_product", {"account": product_account_of(BTC_PRICE)})[0]["result"]
    assert account["price_accounts"][0] == {
        "account": BTC_PRICE, "price_type": "price", "price_exponent": -8, "status": "unknown", "price": 0,
        "conf": 0, "twap": 0, "twac": 0, "valid_slot": 0, "pub_slot": 0, "prev_slot": 0, "prev_price": 0,
        "prev_conf": 0, "publisher_accounts": []}
    world.hub.latest[BTC] = PriceUpdate(BTC, 6_000_000, 300, -8, 999_000_000, 5_900_000, 250)  # restored: stale
    stale = call(session, peer, "get_product", {"account": product_account_of(BTC_PRICE)})[0]["result"]
    (quote,) = stale["price_accounts"][0]["publisher_accounts"]
    assert (stale["price_accounts"][0]["status"], quote["status"], quote["price"]) == ("unknown", "trading",
                                                                                         6_000_000)


# -- update_price and the aggregate ------------------------------------------------------


async def test_update_price_then_the_aggregate_one_slot_later() -> None:
    world = World()
    session, peer = world.session()
    assert call(session, peer, "update_price", {"account": DEMO_PRICE, "price": 42, "conf": 2,
                                                "status": "trading"}) == [{"jsonrpc": "2.0", "result": 0, "id": 1}]
    world.clock.next_slot()
    call(session, peer, "update_price", {"account": DEMO_PRICE, "price": 81, "conf": 1, "status": "trading"})
    account = call(session, peer, "get_product", {"account": DEMO_PRODUCT})[0]["result"]["price_accounts"][0]
    assert (account["price"], account["conf"], account["status"]) == (42, 2, "trading")
    assert account["pub_slot"] == 1001 and account["valid_slot"] == 1000
    assert account["twap"] == 42 and account["twac"] == 2
    await asyncio.sleep(0)  # the hub's pass
    latest = world.hub.latest[world.oracle.products[DEMO_PRICE].feed.id]
    assert (latest.price, latest.conf, latest.expo, latest.status, latest.slot) == (42, 2, -5, Status.TRADING, 1001)


async def test_update_price_takes_positional_params_numeric_strings_and_extra_keys() -> None:
    world = World()
    session, peer = world.session()
    assert call(session, peer, "update_price", [DEMO_PRICE, "42", 2.0, "trading"])[0]["result"] == 0
    assert call(session, peer, "update_price", {"account": DEMO_PRICE, "price": 43, "conf": 2, "status": "trading",
                                                "price_type": "price"})[0]["result"] == 0


async def test_update_price_without_id_is_run_and_not_answered() -> None:
    world = World()
    session, peer = world.session()
    assert raw(session, peer, json.dumps({"jsonrpc": "2.0", "method": "update_price", "params": {
        "account": DEMO_PRICE, "price": 42, "conf": 2, "status": "trading"}})) == []
    assert raw(session, peer, json.dumps({"jsonrpc": "2.0", "method": "update_price",
                                          "params": {"account": DEMO_PRICE}})) == []  # its error is not sent either
    components = world.oracle.products[DEMO_PRICE].state.components
    assert components[DEFAULT_PUBLISHER].latest.price == 42


async def test_wide_interval_is_stored_as_ignored() -> None:
    world = World()
    session, peer = world.session()
    call(session, peer, "update_price", {"account": DEMO_PRICE, "price": 300, "conf": 101, "status": "trading"})
    world.clock.next_slot()
    call(session, peer, "update_price", {"account": DEMO_PRICE, "price": 300, "conf": 1, "status": "trading"})
    account = call(session, peer, "get_product", {"account": DEMO_PRODUCT})[0]["result"]["price_accounts"][0]
    assert account["status"] == "unknown"
    assert account["publisher_accounts"][0]["status"] == "ignored"


async def test_quotes_the_publisher_may_not_make_are_answered_0_dropped_and_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """pyth-agent's ``discards_unpermissioned``: result 0, nothing stored, one log line per publisher and account."""
    world = World()
    stranger = derive_key("publisher", "stranger")
    session, peer = world.session(Handshake(query={"publisher": stranger}))
    caplog.set_level(logging.DEBUG, "pricefeed.faces.jsonrpc")
    for price in (48, 81):
        assert call(session, peer, "update_price", {"account": DEMO_PRICE, "price": price, "conf": 1,
                                                    "status": "trading"}) == [{"jsonrpc": "2.0", "result": 0, "id": 1}]
        world.clock.next_slot()
    assert call(session, peer, "update_price", {"account": BTC_PRICE, "price": 1, "conf": 1,
                                                "status": "trading"})[0]["result"] == 0  # an upstream's, read-only
    state = world.oracle.products[DEMO_PRICE].state
    assert stranger not in state.components and state.pub_slot == 0  # nothing stored, nothing aggregated
    assert world.hub.latest.get(feed_id_of(BTC_PRICE)) is None
    refusals = [r for r in caplog.records if "without permission" in r.getMessage()]
    assert [(r.levelno, DEMO_PRICE in r.getMessage()) for r in refusals] == [
        (logging.WARNING, True), (logging.DEBUG, True), (logging.WARNING, False)]
    assert all(f'"unpermissioned_price_account":"{a}"' in r.getMessage() and stranger in r.getMessage()
               for r, a in zip(refusals, (DEMO_PRICE, DEMO_PRICE, BTC_PRICE), strict=True))
    assert world.api.refused_updates == 3 and world.api.status()["refused_updates"] == 3
    assert world.oracle.refused == 2


def test_update_price_of_an_unknown_account() -> None:
    session, peer = World().session()
    code, message, _ = error_of(call(session, peer, "update_price", {
        "account": derive_key("nothing"), "price": 1, "conf": 1, "status": "trading"}))
    assert code == -32000 and "unknown" in message


@pytest.mark.parametrize(("price", "conf", "stored"), [
    (41.6, 2.4, (42, 2)),
    (41.5, 2.5, (42, 3)),  # half away from zero, as Rust's f64::round (Python's round would give 42, 2)
    (-41.5, 0.5, (-42, 1)),
    ("41.6", "2", (42, 2)),
    ("42", "1e1", (42, 10)),
    (None, "", (0, 0)),
    (2.0, 1, (2, 1)),
])
async def test_update_price_reads_numbers_as_pyth_agent_does(price: Any, conf: Any, stored: tuple[int, int]) -> None:
    world = World()
    session, peer = world.session()
    reply = call(session, peer, "update_price", {"account": DEMO_PRICE, "price": price, "conf": conf,
                                                 "status": "trading"})
    assert reply == [{"jsonrpc": "2.0", "result": 0, "id": 1}]
    latest = world.oracle.products[DEMO_PRICE].state.components[DEFAULT_PUBLISHER].latest
    assert (latest.price, latest.conf) == stored


async def test_a_quote_outside_market_hours_or_within_publish_interval_is_answered_0_and_not_published() -> None:
    closed = ProductSpec(symbol="Equity.US.SHUT/USD", exponent=-5, publishers=(DEFAULT_PUBLISHER,),
                         attributes={"weekly_schedule": "America/New_York,C,C,C,C,C,C,C"})
    slow = ProductSpec(symbol="Crypto.SLOW/USD", exponent=-5, publishers=(DEFAULT_PUBLISHER,),
                       attributes={"publish_interval": "2"})
    world = World()
    world.oracle.add_products([closed, slow])
    session, peer = world.session()

    def quote(spec: ProductSpec, price: int) -> None:
        assert call(session, peer, "update_price", {"account": spec.account, "price": price, "conf": 1,
                                                    "status": "trading"})[0]["result"] == 0

    def aggregate(spec: ProductSpec) -> tuple[int, int, str]:
        product = call(session, peer, "get_product", {"account": product_account_of(spec.account)})
        account = product[0]["result"]["price_accounts"][0]
        return account["price"], account["conf"], account["status"]

    quote(closed, 42)
    world.clock.next_slot()
    quote(closed, 81)
    assert aggregate(closed) == (0, 0, "unknown")
    assert world.oracle.products[closed.account].state.pub_slot == 0  # never even aggregated
    quote(slow, 42)
    world.clock.next_slot()  # 1 s later: within the 2 s interval, dropped
    quote(slow, 81)
    assert aggregate(slow) == (0, 0, "unknown")
    world.clock.t += 5
    quote(slow, 81)
    assert aggregate(slow) == (42, 1, "trading")
    assert (world.oracle.closed_market, world.oracle.too_soon) == (2, 1)


@pytest.mark.parametrize(("params", "fragment"), [
    (None, "needs account, price, conf, status"),
    ([], "needs account, price, conf, status"),
    ({}, "missing 'account', 'price', 'conf', 'status'"),
    ({"account": DEMO_PRICE, "price": 1, "conf": 1}, "missing 'status'"),
    ({"account": 5, "price": 1, "conf": 1, "status": "trading"}, "expected a base58 account key"),
    ({"account": "0OIl", "price": 1, "conf": 1, "status": "trading"}, "not a base58 string"),
    ({"account": "2" * 45, "price": 1, "conf": 1, "status": "trading"}, "32 to 44 characters"),
    ({"account": "1" * 40, "price": 1, "conf": 1, "status": "trading"}, "not 32"),
    ({"account": DEMO_PRICE, "price": "abc", "conf": 1, "status": "trading"},
     'price must be an integer (the value scaled by 10^price_exponent), got "abc"'),
    ({"account": DEMO_PRICE, "price": "inf", "conf": 1, "status": "trading"}, "price must be an integer"),
    ({"account": DEMO_PRICE, "price": True, "conf": 1, "status": "trading"}, "price must be an integer, "[:23]),
    ({"account": DEMO_PRICE, "price": [1], "conf": 1, "status": "trading"}, "got an array"),
    ({"account": DEMO_PRICE, "price": 2**63, "conf": 1, "status": "trading"}, "out of range"),
    ({"account": DEMO_PRICE, "price": 1, "conf": -1, "status": "trading"}, "conf -1 is out of range"),
    ({"account": DEMO_PRICE, "price": 1, "conf": -0.6, "status": "trading"}, "conf -1 is out of range"),
    ({"account": DEMO_PRICE, "price": 1, "conf": 1, "status": "foo"}, 'status "foo": expected one of unknown, '
                                                                      'trading, halted, auction, ignored'),
    ({"account": DEMO_PRICE, "price": 1, "conf": 1, "status": 1}, "status 1: expected"),
    ({"account": DEMO_PRICE, "price": 1, "conf": 1, "status": "x" * 500}, 'status "' + "x" * 60 + '"...: '),
    ([DEMO_PRICE, 1, 1, "trading", "extra"], "takes 4"),
    ("text", "must be an object or an array"),
])
def test_bad_update_price_params(params: Any, fragment: str) -> None:
    session, peer = World().session()
    code, message, request_id = error_of(call(session, peer, "update_price", params, 7))
    assert (code, request_id) == (-32602, 7)
    assert fragment in message, message


DEEP = "[" * 1000 + "]" * 1000
"""Nested 1000 deep: orjson takes up to 1024, Python's repr gives up at its recursion limit."""


@pytest.mark.parametrize(("method", "params", "code"), [
    ("get_product", '{"account":' + DEEP + "}", -32602),
    ("get_product", "[" + DEEP + "]", -32602),
    ("subscribe_price", '{"account":' + DEEP + "}", -32602),
    ("subscribe_price_sched", '{"account":' + DEEP + "}", -32602),
    ("update_price", '{"account":"' + DEMO_PRICE + '","price":' + DEEP + ',"conf":1,"status":"trading"}', -32602),
    ("update_price", '{"account":"' + DEMO_PRICE + '","price":1,"conf":' + DEEP + ',"status":"trading"}', -32602),
    ("update_price", '{"account":"' + DEMO_PRICE + '","price":1,"conf":1,"status":' + DEEP + "}", -32602),
    ("get_product", DEEP, -32602),
    (DEEP, "{}", -32600),
])
def test_a_deeply_nested_value_gets_the_ordinary_error(method: str, params: str, code: int) -> None:
    session, peer = World().session()
    name = method if method.startswith("[") else json.dumps(method)
    (reply,) = raw(session, peer, '{"jsonrpc":"2.0","method":' + name + ',"params":' + params + ',"id":1}')
    assert (reply["error"]["code"], reply["id"]) == (code, 1), reply
    assert len(reply["error"]["message"]) < 300
    assert call(session, peer, "get_product_list")[0]["id"] == 1  # and the connection goes on


# -- the envelope --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code", "reply_id", "fragment"), [
    ("{not json", -32700, None, "parse error"),
    ("", -32700, None, "parse error"),
    ("5", -32600, None, "got a number"),
    ('"x"', -32600, None, "got a string"),
    ('{"jsonrpc":"2.0","id":3}', -32600, 3, "missing \"method\""),
    ('{"jsonrpc":"2.0","method":5,"id":3}', -32600, 3, "\"method\" must be a string"),
    ('{"jsonrpc":"1.0","method":"get_product_list","id":3}', -32600, 3, "\"jsonrpc\" must be \"2.0\""),
    ('{"jsonrpc":"2.0","method":"get_product_list","id":[1]}', -32600, None, "\"id\" must be"),
    ('{"jsonrpc":"2.0","method":"wrong_method","id":"a"}', -32601, "a", 'method not found: "wrong_method"'),
    ('{"jsonrpc":"2.0","method":"notify_price","id":4}', -32601, 4, "notification the server sends"),
    ('{"jsonrpc":"2.0","method":"get_product","id":4}', -32602, 4, "get_product needs account"),
    ('{"jsonrpc":"2.0","method":"get_product","params":{"account":"' + BTC_PRICE + '"},"id":4}', -32000, 4,
     "that is a price account"),
    ('{"jsonrpc":"2.0","method":"subscribe_price","params":{"account":"' + DEMO_PRODUCT + '"},"id":4}', -32000, 4,
     "no price account"),
])
def test_error_catalogue(text: str, code: int, reply_id: Any, fragment: str) -> None:
    session, peer = World().session()
    got_code, message, got_id = error_of(raw(session, peer, text))
    assert (got_code, got_id) == (code, reply_id)
    assert fragment in message, message
    assert call(session, peer, "get_product_list")[0]["id"] == 1  # and the connection goes on


@pytest.mark.parametrize("request_id", ["uuid-1", 0, 12, 2.5, None])
def test_ids_are_echoed_with_their_type(request_id: Any) -> None:
    session, peer = World().session()
    (reply,) = call(session, peer, "get_product_list", None, request_id)
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id)


def test_no_params_methods_accept_absent_empty_list_and_object() -> None:
    session, peer = World().session()
    for params in (None, [], {}):
        assert len(call(session, peer, "get_all_products", params)[0]["result"]) == 2


async def test_batch_runs_in_order_and_answers_one_array() -> None:
    session, peer = World().session()
    batch = [
        {"jsonrpc": "2.0", "method": "update_price", "id": 1,
         "params": {"account": DEMO_PRICE, "price": 42, "conf": 2, "status": "trading"}},
        {"jsonrpc": "2.0", "method": "update_price", "params": {}},  # a notification: no entry
        {"jsonrpc": "2.0", "method": "update_price", "id": 666, "params": {}},
        5,
        {"jsonrpc": "2.0", "method": "get_product", "id": 3, "params": {"account": DEMO_PRODUCT}},
    ]
    (replies,) = raw(session, peer, json.dumps(batch))
    assert [r["id"] for r in replies] == [1, 666, None, 3]
    assert replies[0]["result"] == 0
    assert replies[1]["error"]["code"] == -32602 and replies[2]["error"]["code"] == -32600
    assert replies[3]["result"]["account"] == DEMO_PRODUCT


def test_empty_batch_answers_empty_array_and_all_notifications_answer_nothing() -> None:
    session, peer = World().session()
    assert raw(session, peer, "[]") == [[]]
    assert raw(session, peer, json.dumps([{"jsonrpc": "2.0", "method": "get_product_list"}])) == []


def test_a_batch_of_more_than_1000_requests_is_refused_whole() -> None:
    world = World()
    session, peer = world.session()
    batch = [{"jsonrpc": "2.0", "method": "get_all_products", "id": i} for i in range(1120)]  # 59 KB, as reported
    assert len(json.dumps(batch, separators=(",", ":"))) < 64 * 1024
    code, message, request_id = error_of(raw(session, peer, json.dumps(batch)))
    assert (code, request_id) == (-32600, None)
    assert message == "invalid request: a batch holds at most 1000 requests, got 1120"


def many_feeds(world: World, count: int) -> None:
    world.hub.add_feeds(Feed(f"{i:064x}", f"Crypto.F{i}/USD", -8, "hermes", {"asset_type": "Crypto",
                                                                              "description": "x" * 200})
                        for i in range(1, count + 1))


def test_a_batch_stops_running_once_its_replies_reach_256_kib() -> None:
    world = World()
    many_feeds(world, 20)
    session, peer = world.session()
    one = len(json.dumps(call(session, peer, "get_all_products", None, 0)[0], separators=(",", ":")))
    assert 10_000 < one < 20_000
    batch = [{"jsonrpc": "2.0", "method": "get_all_products", "id": i} for i in range(1000)]
    session.receive_text(json.dumps(batch))
    (replies,) = peer.take()  # one frame
    ran = [r for r in replies if "result" in r]
    expected_runs = -(-MAX_BATCH_REPLY_BYTES // one)  # until the replies reach 256 KiB
    assert [r["id"] for r in ran] == list(range(expected_runs))
    assert [r["id"] for r in replies] == list(range(1000))  # every request answered, in order
    refused = replies[expected_runs:]
    assert {r["error"]["code"] for r in refused} == {-32005}
    assert refused[0]["error"]["message"] == ("request not run: this batch's replies reached 262144 bytes; "
                                              "send fewer requests per batch")
    assert len(json.dumps(replies, separators=(",", ":"))) < MAX_BATCH_REPLY_BYTES + one + 1000 * 150


async def test_each_request_of_a_batch_pays_as_a_message_and_overspending_is_a_flood() -> None:
    world = World()
    session, peer = world.session(budget=10.0)
    batch = [{"jsonrpc": "2.0", "method": "update_price", "id": i,
              "params": {"account": DEMO_PRICE, "price": 42, "conf": 2, "status": "trading"}} for i in range(11)]
    (replies,) = raw(session, peer, json.dumps(batch))  # the message paid for the first, the budget for ten
    assert [r["result"] for r in replies] == [0] * 11 and peer.closed_with is None
    assert peer.budget == 0.0  # replies under 256 bytes cost nothing more
    assert raw(session, peer, json.dumps(batch[:2])) == []  # the second request finds the budget spent
    assert peer.closed_with == (WSCloseCode.POLICY_VIOLATION, "message rate limit exceeded: each request of a "
                                                              "batch counts as a message")


def test_a_large_reply_in_a_batch_costs_its_bytes() -> None:
    world = World()
    many_feeds(world, 20)
    session, peer = world.session()
    (one,) = call(session, peer, "get_all_products")
    assert peer.charged == 0.0  # a request alone is one message, whatever its reply
    size = len(json.dumps(one, separators=(",", ":")))
    raw(session, peer, json.dumps([{"jsonrpc": "2.0", "method": "get_all_products", "id": 1},
                                   {"jsonrpc": "2.0", "method": "get_product_list", "id": 2}]))
    assert peer.charged == pytest.approx(1 + (size - 256) / 256, abs=0.1)  # the second pays for the first's reply


def test_origins_browsers_need_an_allowed_origin() -> None:
    assert origin_allowed(None, [])  # publishing software sends no Origin
    assert not origin_allowed("http://evil.example", [])
    assert not origin_allowed("null", [])
    assert not origin_allowed("http://evil.example", ["http://localhost:3000"])
    assert origin_allowed("http://localhost:3000", ["http://localhost:3000"])
    assert origin_allowed("HTTP://LocalHost:3000/", ["http://localhost:3000"])
    assert not origin_allowed("http://localhost:3001", ["http://localhost:3000"])
    assert origin_allowed("http://evil.example", ["*"])


def test_binary_frames_are_ignored() -> None:
    session, peer = World().session()
    session.receive_binary(b'{"jsonrpc": "2.0"}')
    assert peer.take() == []


# -- subscriptions -----------------------------------------------------------------------------


async def test_subscribe_price_replies_then_notifies_now_and_on_every_aggregate() -> None:
    world = World()
    watcher, seen = world.session()
    (reply, first) = call(watcher, seen, "subscribe_price", {"account": DEMO_PRICE}, 13)
    assert reply == {"jsonrpc": "2.0", "result": {"subscription": 1}, "id": 13}
    assert list(first) == ["jsonrpc", "method", "params"] and first["method"] == "notify_price"
    assert list(first["params"]) == ["result", "subscription"] and first["params"]["subscription"] == 1
    assert list(first["params"]["result"]) == ["price", "conf", "twap", "twac", "status", "num_qt", "valid_slot",
                                               "pub_slot"]
    publisher, out = world.session()
    call(publisher, out, "update_price", {"account": DEMO_PRICE, "price": 42, "conf": 2, "status": "trading"})
    (unknown,) = seen.take()  # the first update aggregated the empty set: pythd notifies that too
    assert unknown["params"]["result"]["status"] == "unknown"
    world.clock.next_slot()
    call(publisher, out, "update_price", {"account": DEMO_PRICE, "price": 43, "conf": 2, "status": "trading"})
    (trading,) = seen.take()
    assert trading["params"] == {"result": {"price": 42, "conf": 2, "twap": 42, "twac": 2, "status": "trading",
                                            "num_qt": 1, "valid_slot": 1000, "pub_slot": 1001}, "subscription": 1}
    watcher.closed()
    world.clock.next_slot()
    call(publisher, out, "update_price", {"account": DEMO_PRICE, "price": 44, "conf": 2, "status": "trading"})
    assert seen.take() == []
    assert world.api.notifier.subscription_count() == 0


async def test_batched_subscribe_sends_its_notification_after_the_reply_array() -> None:
    session, peer = World().session()
    sent = raw(session, peer, json.dumps([{"jsonrpc": "2.0", "method": "subscribe_price", "id": 1,
                                           "params": {"account": DEMO_PRICE}}]))
    assert isinstance(sent[0], list) and sent[1]["method"] == "notify_price"


async def test_subscribe_price_of_an_upstream_feed_follows_the_hub() -> None:
    world = World()
    session, peer = world.session()
    call(session, peer, "subscribe_price", {"account": BTC_PRICE})
    world.ingest.publish(PriceUpdate(BTC, 6_000_000, 300, -8, 999_000_000, 5_900_000, 250, slot=9))
    await asyncio.sleep(0)
    (notification,) = peer.take()
    result = notification["params"]["result"]
    assert (result["price"], result["status"], result["num_qt"], result["pub_slot"]) == (6_000_000, "trading", 1, 999)
    session.closed()
    assert world.hub.subscription_count() == 0


async def test_subscribe_price_sched_notifies_every_interval_until_closed() -> None:
    world = World()
    session, peer = world.session()
    (reply,) = call(session, peer, "subscribe_price_sched", {"account": DEMO_PRICE}, 19)
    sub = reply["result"]["subscription"]

    async def two_ticks() -> None:
        while len(peer.sent) < 2:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(two_ticks(), 2.0)
    assert peer.take()[:2] == [{"jsonrpc": "2.0", "method": "notify_price_sched", "params": {"subscription": sub}}] * 2
    session.closed()
    assert world.api.notifier._timers == {}


def test_stagger_follows_pythd_hash() -> None:
    key = bytes(range(32))
    k0, k2 = int.from_bytes(key[0:8], "little"), int.from_bytes(key[16:24], "little")
    from pricefeed.accounts import encode_key

    assert stagger(encode_key(key)) == ((k0 ^ k2) % 997) / 997


# -- who is speaking -------------------------------------------------------------------------


def test_without_configuration_every_connection_is_the_local_publisher() -> None:
    assert identify(Handshake(), {}) == DEFAULT_PUBLISHER
    assert identify(Handshake(query={"publisher": PUB_B}), {}) == PUB_B


def test_configured_publishers_need_their_secret() -> None:
    publishers = parse_publishers([f"{PUB_B}:s3cret", DEFAULT_PUBLISHER])
    assert publishers == {PUB_B: "s3cret", DEFAULT_PUBLISHER: None}
    assert identify(Handshake(query={"publisher": PUB_B, "secret": "s3cret"}), publishers) == PUB_B
    assert identify(Handshake(headers={"x-publisher-key": PUB_B, "x-publisher-secret": "s3cret"}),
                    publishers) == PUB_B
    assert identify(Handshake(query={"publisher": DEFAULT_PUBLISHER}), publishers) == DEFAULT_PUBLISHER
    assert identify(Handshake(), publishers) is None  # may read, not publish
    with pytest.raises(Refused, match="secret"):
        identify(Handshake(query={"publisher": PUB_B, "secret": "nope"}), publishers)
    with pytest.raises(Refused, match="unknown publisher"):
        identify(Handshake(query={"publisher": derive_key("x")}), publishers)
    with pytest.raises(Refused, match="bad publisher key"):
        identify(Handshake(query={"publisher": "nope"}), publishers)


def test_handshake_parses_target_and_headers() -> None:
    handshake = Handshake.of("/?publisher=abc&secret=x", {"X-Publisher-Key": "h"})
    assert (handshake.path, credential(handshake, "publisher"), credential(handshake, "secret")) == ("/", "abc", "x")


def test_a_refused_handshake_closes_the_connection() -> None:
    world = World({PUB_B: "s3cret"})
    _, peer = world.session(Handshake(query={"publisher": PUB_B, "secret": "wrong"}))
    assert peer.closed_with is not None and peer.closed_with[0] == WSCloseCode.POLICY_VIOLATION
    _, peer = world.session(Handshake(path="/other"))
    assert peer.closed_with is not None and "/other" in peer.closed_with[1]


def test_a_read_only_connection_cannot_publish() -> None:
    world = World({PUB_B: None})
    session, peer = world.session()
    code, message, _ = error_of(call(session, peer, "update_price", {
        "account": DEMO_PRICE, "price": 1, "conf": 1, "status": "trading"}))
    assert code == -32001 and "no publisher key" in message
