"""``--source lazer`` against a local Lazer router: its prices exactly to a seed-000 client; the token never logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from pricefeed.lazer_ids import feed_id_for_lazer

from ..lazer_server import BY_ID, FakeLazer, feed_values
from ..service import ServiceProcess
from ..wsclient import BTC, is_type, recv_until, send

TOKEN = "s3cr3t-t0k3n"
PERP = feed_id_for_lazer(9001)


def lazer_service(tmp_path: Path, name: str, *urls: str, channel: str = "fixed_rate@200ms") -> ServiceProcess:
    args = ["--source", "lazer", "--lazer-token", TOKEN, "--lazer-connections", "2", "--lazer-channel", channel,
            "--feeds", "1", "--feeds", "2", "--feeds", "9001", "--rpc", "false"]
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
    assert perp["symbol"] == "Lazer.9001" and perp["attributes"]["pyth_lazer_id"] == "9001"  # type: ignore[index]
    assert all(h["authorization"] == f"Bearer {TOKEN}" for h in router.handshakes)
    assert TOKEN not in service.log() and TOKEN not in str(status)
    source = next(s for s in status["sources"] if s["name"] == "lazer")
    assert source["state"] == "connected" and len(source["connections"]) == 2


def iso_us(text: str) -> int:
    from pricefeed.client.protocols.seed000 import iso_to_us

    return iso_to_us(text)
