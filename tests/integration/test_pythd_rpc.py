"""The pythd JSON-RPC API over real sockets, with the clients pythd's publishers use.

An in-process assembly (hub, local oracle on a fast wall-clock slot clock, the
pythd listener and the seed-000 listener, each on a free port) stands in for
the service. Every wait is on a condition or the next slot, with a timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from jsonrpc_base import ProtocolError
from jsonrpc_websocket import Server
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from pricefeed.accounts import DEFAULT_PUBLISHER, derive_key, feed_id_of, price_account_of, product_account_of
from pricefeed.faces.jsonrpc import PythdApi, create_rpc_server
from pricefeed.faces.simple_ws import Limits, SimpleWsCodec, SimpleWsSession
from pricefeed.metrics import Metrics
from pricefeed.model import Feed, PriceUpdate, now_us
from pricefeed.pipeline import local_pipeline
from pricefeed.sources.publishers import LocalOracle, ProductSpec, SlotClock
from pricefeed.transport.limits import ConnectionLimits
from pricefeed.transport.picows import PicowsServer

A, B, C, D = (derive_key("publisher", name) for name in "ABCD")
DEMO = ProductSpec(symbol="Crypto.DEMO/USD", exponent=-5, publishers=(DEFAULT_PUBLISHER,))
DEMO2 = ProductSpec(symbol="Crypto.DEMO2/USD", exponent=-3, publishers=(DEFAULT_PUBLISHER,))
TRIO = ProductSpec(symbol="Crypto.TRIO/USD", exponent=-3, publishers=(A, B, C), min_pub=2)
UPSTREAM = Feed("e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43", "Crypto.BTC/USD", -8, "hermes",
                {"asset_type": "Crypto"})
TIMEOUT = 5.0
DEEP = "[" * 1000 + "]" * 1000
"""A value nested 1000 deep (orjson takes up to 1024)."""


class Assembly:
    """Hub + local oracle + pythd listener + seed-000 listener on free ports."""

    def __init__(self, publishers: dict[str, str | None], slot_s: float, origins: tuple[str, ...] = ()) -> None:
        pipeline = local_pipeline()
        self.ingest, self.hub = pipeline.ingest, pipeline.hub
        self.ingest.add_feeds([UPSTREAM])
        self.clock = SlotClock(slot_s)
        self.oracle = LocalOracle(self.ingest, products=[DEMO, DEMO2, TRIO], slot_clock=self.clock)
        self.api = PythdApi.create(self.hub, self.oracle, publishers, publish_interval_s=0.05, origins=origins)
        metrics = Metrics()
        self.rpc = create_rpc_server(self.api, metrics)
        self.seed000 = PicowsServer("seed000", SimpleWsCodec(),
                                    lambda conn: SimpleWsSession(self.hub, conn, conn.client_id, Limits()),
                                    ConnectionLimits(), metrics)

    async def start(self) -> Assembly:
        await self.oracle.start()
        await self.rpc.start("127.0.0.1", 0)
        await self.seed000.start("127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        await self.rpc.close()
        await self.seed000.close()
        await self.oracle.stop()
        self.api.notifier.close()

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.rpc.port}/{query}"

    async def next_slot(self) -> None:
        """Return once the slot clock has moved on (sleeping exactly to the boundary)."""
        current = self.clock.now()
        while self.clock.now() <= current:
            await asyncio.sleep(max(0.0, (current + 1) * self.clock.interval_s - time.time()) + 0.001)


async def assembled(publishers: dict[str, str | None], slot_s: float) -> AsyncIterator[Assembly]:
    assembly = await Assembly(publishers, slot_s).start()
    try:
        yield assembly
    finally:
        await assembly.stop()


@pytest.fixture
async def local() -> AsyncIterator[Assembly]:
    """No publishers configured: every connection is the one local publisher, as pythd is."""
    async for assembly in assembled({}, slot_s=0.05):
        yield assembly


@pytest.fixture
async def configured() -> AsyncIterator[Assembly]:
    """Four configured publishers (A with a secret), a fast 10 ms slot clock."""
    async for assembly in assembled({A: "secret-a", B: None, C: None, D: None}, slot_s=0.01):
        yield assembly


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def jsonrpc_server(url: str) -> Server:
    server = Server(url, timeout=TIMEOUT)
    await server.ws_connect()
    return server


async def rpc(ws: ClientConnection, request: Any) -> Any:
    await ws.send(json.dumps(request))
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


def request(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    return message


def update(account: str, price: int, conf: int, request_id: Any = 1, status: str = "trading") -> dict[str, Any]:
    return request("update_price", {"account": account, "price": price, "conf": conf, "status": status}, request_id)


# -- jsonrpc-websocket, the client of pyth-agent's integration tests ----------------------------


async def test_update_price_then_get_product_reads_the_aggregate_one_slot_later(local: Assembly) -> None:
    server = await jsonrpc_server(local.url())
    try:
        products = await server.get_all_products()
        demo = next(p for p in products if p["attr_dict"]["symbol"] == "Crypto.DEMO/USD")
        account = demo["price_accounts"][0]["account"]
        assert await server.update_price(account=account, price=42, conf=2, status="trading") == 0
        await local.next_slot()
        assert await server.update_price(account=account, price=81, conf=1, status="trading") == 0
        price_account = (await server.get_product(account=demo["account"]))["price_accounts"][0]
        assert (price_account["price"], price_account["conf"], price_account["status"]) == (42, 2, "trading")
        assert price_account["publisher_accounts"][0]["account"] == DEFAULT_PUBLISHER
    finally:
        await server.close()


async def test_subscribe_price_sched_drives_a_publisher_loop(local: Assembly) -> None:
    server = await jsonrpc_server(local.url())
    sent: list[int] = []
    aggregates: list[dict[str, Any]] = []
    account = price_account_of(local.oracle.products[DEMO.account].feed.id)

    async def on_sched(subscription: int) -> None:  # the old example publisher's loop
        price = 1_000_000 + len(sent)
        sent.append(price)
        await server.update_price(account=account, price=price, conf=100, status="trading")

    async def on_price(subscription: int, result: dict[str, Any]) -> None:
        aggregates.append(result)

    server.notify_price_sched = on_sched
    server.notify_price = on_price
    try:
        assert set(await server.subscribe_price_sched(account=account)) == {"subscription"}
        await server.subscribe_price(account=account)

        async def traded_twice() -> bool:
            return sum(a["status"] == "trading" for a in aggregates) >= 2

        await until(traded_twice)
    finally:
        await server.close()
    trading = [a for a in aggregates if a["status"] == "trading"]
    assert all(a["price"] in sent and a["conf"] == 100 and a["num_qt"] == 1 for a in trading)
    assert aggregates[0]["status"] == "unknown"  # the immediate notification, before any quote


# -- a raw websockets publisher in the style of Pyth's example publisher ---------------------------


async def test_example_publisher_style_batches_with_one_reply_frame_each(local: Assembly) -> None:
    async with connect(local.url()) as ws:
        listing = await rpc(ws, {"id": 1, "method": "get_product_list", "params": [], "jsonrpc": "2.0"})
        accounts = {p["attr_dict"]["symbol"]: p["price"][0]["account"] for p in listing["result"]}
        assert listing["id"] == 1 and accounts["Crypto.DEMO/USD"] == DEMO.account
        batch = [update(accounts["Crypto.DEMO/USD"], 4_200_000, 100, 2),
                 update(accounts["Crypto.DEMO2/USD"], 42_000, 10, 3)]
        assert await rpc(ws, batch) == [{"jsonrpc": "2.0", "result": 0, "id": 2},
                                        {"jsonrpc": "2.0", "result": 0, "id": 3}]
        assert await rpc(ws, []) == []
        await local.next_slot()
        await rpc(ws, batch)
        # No unsolicited frame came in between: the next frame is this request's own reply.
        reply = await rpc(ws, request("get_product", {"account": product_account_of(DEMO.account)}, 4))
    assert reply["id"] == 4
    assert reply["result"]["price_accounts"][0]["price"] == 4_200_000


async def test_seed000_client_sees_the_aggregate_live(local: Assembly) -> None:
    feed_id = feed_id_of(DEMO.account)
    async with connect(f"ws://127.0.0.1:{local.seed000.port}") as client, connect(local.url()) as publisher:
        await client.recv()  # connection_established
        await client.send(json.dumps({"type": "subscribe", "feed_id": feed_id}))
        assert json.loads(await client.recv())["type"] == "subscription_confirmed"
        await rpc(publisher, update(DEMO.account, 4_200_000, 100))
        await local.next_slot()
        await rpc(publisher, update(DEMO.account, 4_300_000, 100))
        message = json.loads(await asyncio.wait_for(client.recv(), TIMEOUT))
    assert message["type"] == "price_update"
    assert message["data"]["id"] == feed_id
    assert (message["data"]["price"], message["data"]["conf"], message["data"]["status"]) == (42.0, 0.001, "trading")


# -- three publishers on one product -----------------------------------------------------------------


async def test_three_publishers_aggregate_then_a_stale_one_drops_out(configured: Assembly) -> None:
    urls = {A: configured.url(f"?publisher={A}&secret=secret-a"), B: configured.url(f"?publisher={B}"),
            C: configured.url(f"?publisher={C}")}
    quotes = {A: (100_000, 10_000), B: (200_000, 20_000), C: (300_000, 30_000)}
    async with connect(urls[A]) as a, connect(urls[B]) as b, connect(urls[C]) as c, connect(configured.url()) as reader:
        sockets = {A: a, B: b, C: c}

        async def publish_round(who: tuple[str, ...]) -> dict[str, Any]:
            await configured.next_slot()
            for key in who:
                assert (await rpc(sockets[key], update(TRIO.account, *quotes[key])))["result"] == 0
            reply = await rpc(reader, request("get_product", {"account": product_account_of(TRIO.account)}))
            return dict(reply["result"]["price_accounts"][0])

        async def rounds_until(who: tuple[str, ...], done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            async def run() -> dict[str, Any]:
                while not done(account := await publish_round(who)):
                    pass
                return account

            return await asyncio.wait_for(run(), TIMEOUT)

        def all_three_voted(acc: dict[str, Any]) -> bool:
            voted = [p["price"] for p in acc["publisher_accounts"]]
            return acc["status"] == "trading" and voted == [100_000, 200_000, 300_000]

        everyone = await rounds_until((A, B, C), all_three_voted)
        assert (everyone["price"], everyone["conf"]) == (200_000, 90_000)

        slot_c_stopped = configured.clock.now()
        two = await rounds_until((A, B), lambda acc: acc["price"] != 200_000)
        assert (two["price"], two["conf"], two["status"]) == (145_000, 55_000, "trading")
        assert two["pub_slot"] - two["publisher_accounts"][2]["slot"] > 25  # C's quote is still shown, but stale
        assert configured.clock.now() - slot_c_stopped > 25

        alone = await rounds_until((A,), lambda acc: acc["status"] != "trading")
        assert (alone["status"], alone["price"], alone["conf"]) == ("unknown", 145_000, 55_000)  # min_pub 2


async def test_unpermitted_quotes_are_answered_0_and_an_unknown_publisher_is_refused(
        configured: Assembly, caplog: pytest.LogCaptureFixture) -> None:
    async with connect(configured.url(f"?publisher={D}")) as d:
        assert await rpc(d, update(TRIO.account, 1_000, 10, "d")) == {"jsonrpc": "2.0", "result": 0, "id": "d"}
        assert (await rpc(d, request("get_product_list")))["id"] == 1  # the connection goes on
    assert any(D in r.getMessage() and "without permission" in r.getMessage() for r in caplog.records)
    assert D not in configured.oracle.products[TRIO.account].state.components
    assert configured.api.refused_updates == 1
    async with connect(configured.url(f"?publisher={A}&secret=wrong")) as wrong:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(wrong.recv(), TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_jsonrpc_websocket_publishes_a_batch_without_a_protocol_error_for_unpermitted_accounts(
        configured: Assembly) -> None:
    """pyth-agent answers 0 to every well-formed quote; a publisher raising on any error would stop here."""
    server = await jsonrpc_server(configured.url(f"?publisher={D}"))
    try:
        assert await server.update_price(account=TRIO.account, price=1, conf=1, status="trading") == 0
        assert await server.update_price(account=price_account_of(UPSTREAM.id), price=1, conf=1,
                                         status="trading") == 0
        with pytest.raises(ProtocolError) as unknown:
            await server.update_price(account=derive_key("none"), price=1, conf=1, status="trading")
        assert unknown.value.args[0] == -32000  # ProtocolError(code, message, data)
    finally:
        await server.close()
    assert configured.hub.latest.get(UPSTREAM.id) is None


# -- upstream feeds, bad input, connection life -------------------------------------------------------


async def test_upstream_feed_is_readable_and_subscribable_on_the_one_slot_clock(local: Assembly) -> None:
    account = price_account_of(UPSTREAM.id)
    async with connect(local.url()) as ws:
        product = await rpc(ws, request("get_product", {"account": product_account_of(account)}))
        assert product["result"]["attr_dict"]["symbol"] == "Crypto.BTC/USD"
        assert (await rpc(ws, request("subscribe_price", {"account": account}, 2)))["result"]["subscription"] >= 1
        assert json.loads(await ws.recv())["method"] == "notify_price"  # the current price, right away
        published = now_us()
        local.ingest.publish(PriceUpdate(UPSTREAM.id, 9_500_000_000_000, 4_000_000, -8, published, 9_400_000_000_000,
                                         3_000_000, prev_publish_time_us=published - 1_000_000, slot=123))
        notification = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        await rpc(ws, update(DEMO.account, 4_200_000, 100, 3))
        demo = (await rpc(ws, request("get_product", {"account": product_account_of(DEMO.account)}, 4)))["result"]
        btc = (await rpc(ws, request("get_product", {"account": product_account_of(account)}, 5)))["result"]
    slot = local.clock.slot_at(published / 1e6)  # the upstream's own slot (123) is not this clock's
    assert notification["params"]["result"] == {"price": 9_500_000_000_000, "conf": 4_000_000,
                                                 "twap": 9_400_000_000_000, "twac": 3_000_000, "status": "trading",
                                                 "num_qt": 1, "valid_slot": slot - 1, "pub_slot": slot}
    price_account = btc["price_accounts"][0]
    previous = local.clock.slot_at((published - 1_000_000) / 1e6)  # 1 s = 20 slots of 50 ms before
    assert (price_account["valid_slot"], price_account["pub_slot"], price_account["prev_slot"]) == (
        slot - 1, slot, previous)
    assert [(p["price"], p["status"], p["slot"]) for p in price_account["publisher_accounts"]] == [
        (9_500_000_000_000, "trading", slot - 1)]
    assert 0 <= demo["price_accounts"][0]["pub_slot"] - slot < TIMEOUT / local.clock.interval_s  # same clock


@pytest.mark.parametrize(("frame", "code"), [
    ("{oops", -32700),
    ("42", -32600),
    ('{"jsonrpc":"2.0","id":9}', -32600),
    ('{"jsonrpc":"2.0","method":"wrong_method","id":9}', -32601),
    ('{"jsonrpc":"2.0","method":"update_price","params":{},"id":9}', -32602),
    ('{"jsonrpc":"2.0","method":"update_price","params":{"account":"x","price":1,"conf":1,"status":"trading"},'
     '"id":9}', -32602),
    ('{"jsonrpc":"2.0","method":"get_product","params":{"account":"' + derive_key("none") + '"},"id":9}', -32000),
    ('{"jsonrpc":"2.0","method":"get_product","params":{"account":' + DEEP + '},"id":9}', -32602),
    ('{"jsonrpc":"2.0","method":"update_price","params":{"account":"' + DEMO.account + '","price":' + DEEP
     + ',"conf":1,"status":"trading"},"id":9}', -32602),
    ('{"jsonrpc":"2.0","method":"update_price","params":{"account":"' + DEMO.account + '","price":1,"conf":1,'
     '"status":' + DEEP + '},"id":9}', -32602),
])
async def test_every_bad_input_gets_its_error_and_the_connection_goes_on(local: Assembly, frame: str,
                                                                         code: int) -> None:
    async with connect(local.url()) as ws:
        await ws.send(bytes(range(32)))  # a binary frame: ignored, no reply
        await ws.send(frame)
        reply = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert reply["error"]["code"] == code and reply["error"]["message"]
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "get_product_list"}))  # no id: run, not answered
        assert (await rpc(ws, request("get_product_list", [], "after")))["id"] == "after"


async def test_a_subscription_ends_when_its_connection_closes(local: Assembly) -> None:
    async with connect(local.url()) as ws:
        await rpc(ws, request("subscribe_price_sched", {"account": DEMO.account}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["method"] == "notify_price_sched"
        await rpc(ws, request("subscribe_price", {"account": DEMO.account}, 2))
        assert local.api.notifier.subscription_count() == 2

    async def none_left() -> bool:
        return local.api.notifier.subscription_count() == 0

    await until(none_left)


# -- what a batch may cost, and who may connect ---------------------------------------------------------


async def test_a_huge_batch_is_refused_whole_a_large_one_is_bounded_and_a_loop_of_them_closed(
        local: Assembly) -> None:
    local.hub.add_feeds(Feed(f"{i:064x}", f"Crypto.F{i}/USD", -8, "hermes", {"description": "x" * 200})
                        for i in range(1, 21))
    async with connect(local.url(), max_size=None) as ws, connect(local.url()) as other:
        # The reported batch: 1120 get_all_products in 59 KB, which bought an 11.2 MB reply.
        batch = json.dumps([request("get_all_products", None, i) for i in range(1120)], separators=(",", ":"))
        assert len(batch) < 64 * 1024  # within the message size limit
        await ws.send(batch)
        reply = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert reply == {"jsonrpc": "2.0", "error": {"code": -32600, "message": "invalid request: a batch holds at "
                                                                                "most 1000 requests, got 1120"},
                         "id": None}
        smaller = json.dumps([request("get_all_products", None, i) for i in range(200)])
        await ws.send(smaller)
        frame = await asyncio.wait_for(ws.recv(), TIMEOUT)
        replies = json.loads(frame)
        assert [r["id"] for r in replies] == list(range(200))
        ran = [r["id"] for r in replies if "result" in r]
        assert ran == list(range(len(ran))) and 10 < len(ran) < 30  # until the replies reach 256 KiB
        assert {r["error"]["code"] for r in replies[len(ran):]} == {-32005}
        assert len(frame) < 256 * 1024 + 20_000 + 200 * 150
        assert (await rpc(other, request("get_product_list", [], "other")))["id"] == "other"  # others go on
        # That batch spent most of the connection's budget: the next one overspends it, a flood.
        await ws.send(smaller)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert (await rpc(other, request("get_product_list", [], "still")))["id"] == "still"


@pytest.fixture
async def browsers_allowed() -> AsyncIterator[Assembly]:
    assembly = Assembly({}, slot_s=0.05, origins=("http://localhost:3000",))
    await assembly.start()
    try:
        yield assembly
    finally:
        await assembly.stop()


async def test_a_web_page_may_not_connect_unless_its_origin_is_allowed(local: Assembly,
                                                                       browsers_allowed: Assembly) -> None:
    for assembly in (local, browsers_allowed):
        with pytest.raises(InvalidStatus) as refused:
            await connect(assembly.url(), origin=Origin("http://evil.example"))
        assert refused.value.response.status_code == 403
        body = refused.value.response.body
        assert b"origin 'http://evil.example' is not allowed: set --rpc-origins to allow it" in body
    async with connect(browsers_allowed.url(), origin=Origin("http://localhost:3000")) as page:
        assert (await rpc(page, update(DEMO.account, 31_337, 1)))["result"] == 0
    async with connect(local.url()) as publisher:  # publishing software sends no Origin
        assert (await rpc(publisher, update(DEMO.account, 4_200_000, 100)))["result"] == 0
    components = local.oracle.products[DEMO.account].state.components
    assert components[DEFAULT_PUBLISHER].latest.price == 4_200_000
