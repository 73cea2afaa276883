"""A publisher written for pythd publishes into the real service; seed-000 and Hermes clients see the aggregate."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import base58
import pytest
from jsonrpc_websocket import Server
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from pricefeed.accounts import product_account_of
from pricefeed.sources.publishers import load_products

from ..service import ServiceProcess, free_port
from ..wsclient import is_type, recv_json, recv_until, send

PRODUCTS = Path(__file__).resolve().parents[2] / "examples" / "products.json"


async def test_a_pythd_publisher_drives_a_feed_every_face_serves(tmp_path: Path) -> None:
    rpc_port = free_port()
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--products", str(PRODUCTS),
                               "--rpc-port", str(rpc_port), "--slot-interval", "0.05").start()
    try:
        async with connect(f"ws://127.0.0.1:{rpc_port}/") as publisher, connect(svc.ws_url) as client:
            await publisher.send(json.dumps({"jsonrpc": "2.0", "method": "get_product_list", "id": 1}))
            products = json.loads(await publisher.recv())["result"]
            demo = next(p for p in products if p["attr_dict"]["symbol"] == "Crypto.DEMO/USD")
            account = demo["price"][0]["account"]
            feed_id = base58.b58decode(account).hex()
            await recv_json(client)
            await send(client, {"type": "subscribe", "feed_id": feed_id})
            await recv_until(client, is_type("subscription_confirmed"))

            async def publish_until_seen() -> dict[str, object]:
                request_id = 10
                while True:  # one quote per slot: the aggregate follows one slot later
                    request_id += 1
                    await publisher.send(json.dumps({"jsonrpc": "2.0", "method": "update_price", "id": request_id,
                                                     "params": {"account": account, "price": 4200012, "conf": 300,
                                                                "status": "trading"}}))
                    assert json.loads(await publisher.recv()) == {"jsonrpc": "2.0", "result": 0, "id": request_id}
                    try:
                        return (await recv_until(client, is_type("price_update"), timeout=0.2))["data"]
                    except TimeoutError:
                        continue

            data = await asyncio.wait_for(publish_until_seen(), 15)
        assert data["id"] == feed_id and data["price"] == 42.00012 and data["conf"] == 0.003
        assert data["status"] == "trading" and data["expo"] == -5
        hermes = (await svc.get("/v2/updates/price/latest", **{"ids[]": feed_id})).json()["parsed"][0]
        assert hermes["price"]["price"] == "4200012" and hermes["price"]["expo"] == -5
        assert (await svc.get("/health")).json()["status"] == "ok"
    finally:
        await svc.stop()


def example_accounts() -> list[str]:
    return [spec.account for spec in load_products(PRODUCTS)]


async def test_one_notify_price_sched_per_subscription_per_interval_for_every_example_account(
        tmp_path: Path) -> None:
    """The service runs on uvloop, whose millisecond clock once turned each tick into a burst of duplicates."""
    interval, intervals = 0.4, 5
    rpc_port = free_port()
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--products", str(PRODUCTS),
                               "--rpc-port", str(rpc_port), "--publish-interval", str(interval)).start()
    server = Server(f"ws://127.0.0.1:{rpc_port}/", timeout=10)
    arrivals: dict[int, list[float]] = defaultdict(list)

    async def on_sched(subscription: int) -> None:
        arrivals[subscription].append(time.monotonic())

    server.notify_price_sched = on_sched
    try:
        await server.ws_connect()
        subscriptions = {account: [(await server.subscribe_price_sched(account=account))["subscription"]
                                   for _ in range(2)] for account in example_accounts()}

        async def every_window_is_over() -> None:
            while not all(len(arrivals[s]) > intervals for subs in subscriptions.values() for s in subs):
                await asyncio.sleep(interval / 4)

        await asyncio.wait_for(every_window_is_over(), 20)
    finally:
        await server.close()
        await svc.stop()
    # Counted from each subscription's first notification over whole intervals, the window ending half an
    # interval away from any tick: exactly one per interval.
    counts = {account: [sum(1 for t in arrivals[s] if t < arrivals[s][0] + (intervals - 0.5) * interval)
                        for s in subs] for account, subs in subscriptions.items()}
    assert counts == {account: [intervals, intervals] for account in example_accounts()}


async def rpc(ws: ClientConnection, method: str, params: object, request_id: int = 1) -> dict[str, Any]:
    await ws.send(json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}))
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return reply


async def test_the_oracle_survives_a_restart_and_a_removed_product_leaves(tmp_path: Path) -> None:
    products = tmp_path / "products.json"
    shutil.copy(PRODUCTS, products)
    demo, trio = load_products(PRODUCTS)[:2]
    rpc_port = free_port()

    def service() -> ServiceProcess:
        return ServiceProcess(tmp_path / "db", "--source", "sim", "--products", str(products),
                              "--rpc-port", str(rpc_port), "--slot-interval", "0.05")

    first = await service().start()
    try:
        async with connect(f"ws://127.0.0.1:{rpc_port}/") as publisher:
            for price in (4_200_000, 4_300_000, 4_400_000):
                assert (await rpc(publisher, "update_price", {"account": demo.account, "price": price, "conf": 300,
                                                              "status": "trading"}))["result"] == 0
                slot = int(time.time() / 0.05)
                while int(time.time() / 0.05) == slot:
                    await asyncio.sleep(0.01)
            before = (await rpc(publisher, "get_product", {"account": product_account_of(demo.account)}))["result"]
    finally:
        await first.stop()
    assert before["price_accounts"][0]["status"] == "trading" and before["price_accounts"][0]["price"] == 4_300_000

    data = json.loads(products.read_text())
    data["products"] = [p for p in data["products"] if p["symbol"] != trio.symbol]
    products.write_text(json.dumps(data))
    second = await service().start()
    try:
        async with connect(f"ws://127.0.0.1:{rpc_port}/") as reader:
            after = (await rpc(reader, "get_product", {"account": product_account_of(demo.account)}))["result"]
            listing = (await rpc(reader, "get_product_list", [], 2))["result"]
            gone = await rpc(reader, "get_product", {"account": product_account_of(trio.account)}, 3)
            quote = await rpc(reader, "update_price", {"account": trio.account, "price": 1, "conf": 1,
                                                       "status": "trading"}, 4)
    finally:
        await second.stop()
    assert after == before  # aggregate, EMAs, slots and the publisher's last quote
    assert trio.symbol not in {p["attr_dict"]["symbol"] for p in listing}
    assert demo.symbol in {p["attr_dict"]["symbol"] for p in listing}
    assert gone["error"]["code"] == -32000 and quote["error"]["code"] == -32000


async def test_an_upstream_feed_reads_as_an_account_on_the_slot_clock(tmp_path: Path) -> None:
    rpc_port = free_port()
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.05", "--products",
                               str(PRODUCTS), "--rpc-port", str(rpc_port), "--slot-interval", "0.05").start()
    try:
        btc = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
        async with connect(f"ws://127.0.0.1:{rpc_port}/") as watcher, connect(f"ws://127.0.0.1:{rpc_port}/") as reader:
            account = base58.b58encode(bytes.fromhex(btc)).decode()
            await rpc(watcher, "subscribe_price", {"account": account})

            async def trading() -> None:
                while json.loads(await watcher.recv())["params"]["result"]["status"] != "trading":
                    pass

            await asyncio.wait_for(trading(), 10)
            product = (await rpc(reader, "get_product", {"account": product_account_of(account)}))["result"]
            now_slot = int(time.time() / 0.05)
    finally:
        await svc.stop()
    price_account = product["price_accounts"][0]
    assert price_account["status"] == "trading"
    assert price_account["prev_slot"] <= price_account["valid_slot"] < price_account["pub_slot"] <= now_slot
    assert now_slot - price_account["pub_slot"] < 40  # the clock of local products, not a counter from 1
    (quoter,) = price_account["publisher_accounts"]
    assert (quoter["status"], quoter["price"], quoter["slot"]) == ("trading", price_account["price"],
                                                                   price_account["valid_slot"])


async def test_web_pages_cannot_publish_unless_their_origin_is_allowed(tmp_path: Path) -> None:
    rpc_port = free_port()
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--products", str(PRODUCTS), "--rpc-port",
                               str(rpc_port), "--rpc-origins", "http://localhost:3000").start()
    demo = load_products(PRODUCTS)[0]
    quote = {"account": demo.account, "price": 31337, "conf": 1, "status": "trading"}
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{rpc_port}/", origin=Origin("http://evil.example")) as page:
                await rpc(page, "update_price", quote)
        assert refused.value.response.status_code == 403
        async with connect(f"ws://127.0.0.1:{rpc_port}/", origin=Origin("http://localhost:3000")) as page:
            assert (await rpc(page, "update_price", quote))["result"] == 0
    finally:
        await svc.stop()
    refusals = [line for line in svc.log().splitlines() if "pythd: refused" in line]
    assert len(refusals) == 1 and "WARNING" in refusals[0]  # logged once, at warning level
    assert "origin 'http://evil.example' is not allowed: set --rpc-origins to allow it" in refusals[0]
