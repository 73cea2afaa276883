"""``--source lazer`` against a local Lazer router: its prices exactly to a seed-000 client; the token never logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from pricefeed.client import PROPERTIES, ClientBuilder, LazerSubscription, StreamUpdated
from pricefeed.lazer_ids import feed_id_for_lazer

from ..lazer_server import BY_ID, FakeLazer, feed_values
from ..service import ServiceProcess
from ..wsclient import BTC, is_type, recv_until, send

TOKEN = "s3cr3t-t0k3n"
PERP = feed_id_for_lazer(9001)


def lazer_service(tmp_path: Path, name: str, *urls: str, channel: str = "fixed_rate@200ms") -> ServiceProcess:
    args = ["--source", "lazer", "--lazer-token", TOKEN, "--lazer-connections", "2", "--lazer-channel", channel,
            "--feeds", "1", "--feeds", "2", "--feeds", "Crypto.ETH-PERP/USD", "--rpc", "false"]
    for url in urls:
        args += ["--lazer-url", url]
    return ServiceProcess(tmp_path / f"{name}.db", *args)


@pytest.fixture
async def router() -> AsyncIterator[FakeLazer]:
    server = await FakeLazer(token=TOKEN).start()
    try:
        yield server
    finally:
        await server.kill()


async def wait_for_feed(service: ServiceProcess, feed_id: str, timeout_s: float = 10.0) -> dict[str, object]:
    """Poll ``/feeds`` until the source has registered and priced ``feed_id`` (start-up, not a data wait)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [f for f in (await service.get("/feeds")).json() if f["id"] == feed_id and f["price"] is not None]
        if found:
            return found[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"feed {feed_id} never priced:\n{service.log()}")


async def test_the_routers_prices_reach_a_seed000_client_exactly(tmp_path: Path, router: FakeLazer) -> None:
    service = await lazer_service(tmp_path, "a", router.url).start()
    try:
        perp = await wait_for_feed(service, PERP)
        btc = await wait_for_feed(service, BTC)
        async with connect(service.ws_url) as ws:
            await send(ws, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC}, {"feed_id": PERP}]})
            seen: dict[str, list[dict[str, object]]] = {BTC: [], PERP: []}
            while min(len(v) for v in seen.values()) < 4:
                data = (await recv_until(ws, is_type("price_update")))["data"]
                seen[data["id"]].append(data)
        status = (await service.get("/status")).json()
    finally:
        await service.stop()
    for feed_id, lazer_id in ((BTC, 1), (PERP, 9001)):
        updates = seen[feed_id][1:]  # the first is the snapshot sent on subscribing
        times = [u["publish_time"] for u in updates]
        assert len(set(times)) == len(times)
        for update in updates:
            tick = iso_us(str(update["publish_time"]))
            assert tick % 200_000 == 0
            values = feed_values(BY_ID[lazer_id], tick)
            assert update["price"] == int(values["price"]) / 10**8
            assert update["conf"] == values["confidence"] / 10**8
            assert update["ema_price"] == int(values["emaPrice"]) / 10**8
            assert update["ema_conf"] == values["emaConfidence"] / 10**8
            assert update["expo"] == -8 and update["status"] == "trading"
    assert btc["symbol"] == "Crypto.BTC/USD" and btc["source"] == "lazer"
    assert btc["attributes"]["pyth_lazer_id"] == "1"  # type: ignore[index]
    assert perp["symbol"] == "Crypto.ETH-PERP/USD"  # asked for by symbol: Lazer's answers name only its id
    assert perp["attributes"]["pyth_lazer_id"] == "9001"  # type: ignore[index]
    assert all(h["authorization"] == f"Bearer {TOKEN}" for h in router.handshakes)
    assert TOKEN not in service.log() and TOKEN not in str(status)
    source = next(s for s in status["sources"] if s["name"] == "lazer")
    assert source["state"] == "connected" and len(source["connections"]) == 2


def iso_us(text: str) -> int:
    from pricefeed.client.protocols.seed000 import iso_to_us

    return iso_to_us(text)


async def test_lazers_extra_properties_come_out_of_pricefeeds_lazer_face(tmp_path: Path, router: FakeLazer) -> None:
    service = await lazer_service(tmp_path, "a", router.url).start()
    try:
        await wait_for_feed(service, PERP)
        client = (ClientBuilder().with_endpoints([f"ws://127.0.0.1:{service.api_port}/v1/stream"])
                  .with_num_connections(2).build())
        updates: list[StreamUpdated] = []
        async with client:
            await client.subscribe(LazerSubscription(5, price_feed_ids=[9001, 1], properties=PROPERTIES,
                                                     channel="real_time"))
            async for message in client:
                if isinstance(message, StreamUpdated):
                    updates.append(message)
                    if len(updates) == 6:
                        break
    finally:
        await service.stop()
    for update in updates[1:]:  # after the snapshot, each router tick as it comes
        for feed in update.feeds:
            assert feed.feed_update_timestamp_us is not None
            values = feed_values(BY_ID[feed.price_feed_id], feed.feed_update_timestamp_us)
            for name, got in (("price", feed.price), ("bestBidPrice", feed.best_bid_price),
                              ("bestAskPrice", feed.best_ask_price), ("confidence", feed.confidence),
                              ("emaPrice", feed.ema_price), ("emaConfidence", feed.ema_confidence)):
                assert got == Decimal(str(values[name])).scaleb(-8), name
            assert (feed.publisher_count, feed.exponent, feed.market_session) == (
                values["publisherCount"], -8, "regular")
            assert (feed.funding_rate, feed.funding_timestamp_us, feed.funding_rate_interval_us) == (
                values.get("fundingRate"), values.get("fundingTimestamp"), values.get("fundingRateInterval"))
            assert update.timestamp_us == max(f.feed_update_timestamp_us or 0 for f in update.feeds)
    assert any(f.funding_rate is not None for u in updates for f in u.feeds)
