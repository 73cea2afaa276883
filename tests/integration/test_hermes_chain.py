"""A fan-out tree: pricefeed B streams from pricefeed A's Hermes-compatible SSE and serves A's prices exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.client import connect

from ..service import ServiceProcess
from ..wsclient import BTC, ETH, is_type, recv_json, recv_until, send

VALUES = ("price", "conf", "ema_price", "ema_conf", "expo")


async def test_b_delivers_a_prices_exactly(tmp_path: Path) -> None:
    a = await ServiceProcess(tmp_path / "a.db", "--source", "sim", "--sim-interval", "0.2", "--seed", "11").start()
    b = ServiceProcess(tmp_path / "b.db", "--source", "hermes", "--pyth-sse-url",
                       a.api_url + "/v2/updates/price/stream", "--feeds", BTC, "--feeds", "ETH/USD",
                       "--upstream-connections", "2")
    try:
        await b.start()
        async with connect(a.ws_url) as from_a, connect(b.ws_url) as from_b:
            for ws in (from_a, from_b):
                await recv_json(ws)
                await send(ws, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC}, {"feed_id": ETH}]})
            seen_a: dict[tuple[object, ...], str] = {}
            seen_b: list[dict[str, object]] = []

            async def collect() -> None:
                while len(seen_b) < 12:
                    seen_b.append((await recv_until(from_b, is_type("price_update"), timeout=10))["data"])
                # A has published everything B delivered after B's snapshots.
                while not all(_key(d) in seen_a for d in seen_b[2:]):
                    data = (await recv_until(from_a, is_type("price_update")))["data"]
                    seen_a[_key(data)] = str(data["publish_time"])

            await asyncio.wait_for(collect(), 30)
        for data in seen_b[2:]:
            # Hermes carries whole seconds: B's time is A's, truncated.
            assert str(data["publish_time"]) == seen_a[_key(data)][:19] + ".000Z"
        feeds_b = {f["id"]: f for f in (await b.get("/feeds")).json()}
        assert feeds_b[BTC]["attributes"]["simulated"] == "true"  # A's metadata, carried along
    finally:
        await b.stop()
        await a.stop()


def _key(data: dict[str, object]) -> tuple[object, ...]:
    return (data["id"], *(data[k] for k in VALUES))
