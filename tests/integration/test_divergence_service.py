"""The divergence watch in the real service (a subprocess), fed by two fake upstreams that speak their real wire
formats: Hermes (SSE) and CoinGecko (REST) both carry BTC/USD. When CoinGecko's price drifts 1 % away, the asset is
flagged in /status, /metrics and /assets, and /ws/alerts carries exactly one raised alert; when the prices
converge again, exactly one cleared alert, and the flag is gone. Both /assets routes are in the OpenAPI docs; an
unknown asset is a 404 naming the known ones."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ..coingecko_server import CoinGeckoServer
from ..hermes_server import BTC, HermesServer, price_item
from ..service import ServiceProcess
from ..wsclient import recv_json, recv_until, send

HOLD_S = 0.5
TICK_S = 0.1
LISTS = ("price_alerts", "volume_alerts", "breakout_alerts")


def spread_bps(low: float, high: float) -> float:
    return round((high - low) / ((low + high) / 2) * 10_000, 4)


class Upstreams:
    """Hermes and CoinGecko quoting BTC/USD at prices the test sets, with fresh publish times every tick."""

    def __init__(self, hermes: HermesServer, coingecko: CoinGeckoServer) -> None:
        self.hermes = hermes
        self.coingecko = coingecko
        self.prices = {"hermes": 95_000, "coingecko": 95_000}
        self._slot = itertools.count(200_000_000)
        self._entry = orjson.loads(coingecko.entries["bitcoin"])

    def quote(self) -> None:
        now = time.time()
        self.hermes.broadcast([price_item(BTC, self.prices["hermes"] * 10**8, publish_time=int(now),
                                          slot=next(self._slot), conf=1_000_000)])
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.coingecko.entries["bitcoin"] = orjson.dumps({**self._entry, "current_price": self.prices["coingecko"],
                                                          "last_updated": stamp})

    async def run(self) -> None:
        while True:
            self.quote()
            await asyncio.sleep(TICK_S)


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    hermes = HermesServer()
    await hermes.start()
    coingecko = await CoinGeckoServer().start()
    feeds = Upstreams(hermes, coingecko)
    feeds.quote()
    task = asyncio.create_task(feeds.run())
    try:
        yield feeds
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hermes.stop()
        await coingecko.stop()


@pytest.fixture
async def service(tmp_path: Path, upstreams: Upstreams) -> AsyncIterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "db", "--source", "hermes", "--source", "coingecko",
                         "--pyth-sse-url", upstreams.hermes.stream_url, "--feeds", BTC, "--upstream-connections", "1",
                         "--coingecko-url", upstreams.coingecko.url, "--coingecko-coins", "BTC",
                         "--coingecko-interval", "0.2", "--coingecko-calls-per-minute", "600",
                         "--divergence-bps", "50", "--divergence-hold", str(HOLD_S))
    try:
        await svc.start()
        yield svc
    finally:
        await svc.stop()


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """The first truthy result of ``check`` (a REST read: the service's state, polled while it is reached)."""
    async with asyncio.timeout(timeout):
        while not (found := await check()):
            await asyncio.sleep(0.05)
    return found


async def divergence_alert(ws: ClientConnection) -> dict[str, Any]:
    """The next data message, which on this connection can only be a divergence alert; its one alert."""
    message = await recv_until(ws, lambda m: m["type"] == "data", timeout=10.0)
    assert (message["data_type"], message["symbol"]) == ("alerts", "BTC/USD")
    assert message["data"]["owner"] is None and all(message["data"][name] == [] for name in LISTS)
    (alert,) = message["data"]["divergence_alerts"]
    assert alert["triggered_at"] == message["timestamp"]
    return dict(alert)


def sample(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_two_upstreams_drift_apart_raise_the_flag_and_one_alert_then_converge_and_clear(
        service: ServiceProcess, upstreams: Upstreams) -> None:
    async def both_trading() -> Any:
        answer = await service.get("/assets/BTC-USD")
        view = answer.json() if answer.status_code == 200 else {}
        sources = view.get("sources", {})
        return view if sorted(sources) == ["coingecko", "hermes"] and all(
            s["status"] == "trading" for s in sources.values()) else None

    converged = await until(both_trading)
    assert (converged["asset"], converged["spread_bps"], converged["median"]) == ("BTC/USD", 0.0, 95_000.0)
    assert converged["diverging"] is False and converged["threshold_bps"] == 50.0
    async with connect(f"{service.streams_url}/ws/alerts") as ws:
        assert (await recv_json(ws))["type"] == "connection"
        await send(ws, {"type": "subscribe", "symbol": "BTC/USD"})
        assert (await recv_json(ws))["status"] == "subscribed"
        snapshot = await recv_json(ws)
        assert snapshot["data"] == {"owner": None, "price_alerts": [], "volume_alerts": [], "breakout_alerts": [],
                                    "divergence_alerts": []}

        upstreams.prices["coingecko"] = 96_000  # 104.7 bps away
        raised = await divergence_alert(ws)
        assert (raised["type"], raised["state"], raised["triggered"], raised["asset"]) == (
            "divergence", "raised", True, "BTC/USD")
        assert (raised["spread_bps"], raised["threshold_bps"]) == (spread_bps(95_000, 96_000), 50.0)
        assert {s: (p["price"], p["status"]) for s, p in raised["sources"].items()} == {
            "coingecko": (96_000.0, "trading"), "hermes": (95_000.0, "trading")}
        held = (datetime.fromisoformat(raised["triggered_at"]) - datetime.fromisoformat(raised["since"]))
        assert held.total_seconds() >= HOLD_S

        (flagged,) = (await service.get("/status")).json()["divergences"]
        assert set(flagged) == {"asset", "spread_bps", "since", "sources"}
        assert (flagged["asset"], flagged["spread_bps"], flagged["since"]) == (
            "BTC/USD", spread_bps(95_000, 96_000), raised["since"])
        assert {s: set(p) for s, p in flagged["sources"].items()} == {
            "coingecko": {"price", "age_s", "status"}, "hermes": {"price", "age_s", "status"}}
        assert {s: p["price"] for s, p in flagged["sources"].items()} == {"coingecko": 96_000.0, "hermes": 95_000.0}
        metrics = (await service.get("/metrics")).text
        assert sample(metrics, 'pricefeed_divergence_flagged{asset="BTC/USD"}') == 1.0
        assert sample(metrics, 'pricefeed_divergence_bps{asset="BTC/USD"}') == pytest.approx(104.712, abs=1e-3)
        assert (await service.get("/assets")).json() == [{"asset": "BTC/USD", "sources": ["coingecko", "hermes"],
                                                          "spread_bps": pytest.approx(104.712, abs=1e-3),
                                                          "diverging": True}]
        view = (await service.get("/assets/btc/usd")).json()
        assert (view["median"], view["diverging"], view["since"]) == (95_500.0, True, raised["since"])
        async with connect(f"{service.streams_url}/ws/alerts?owner=late") as late:  # told at once on subscribe
            assert (await recv_json(late))["type"] == "connection"
            await send(late, {"type": "subscribe", "symbol": "BTC"})
            assert (await recv_json(late))["status"] == "subscribed"
            (current,) = (await recv_json(late))["data"]["divergence_alerts"]
            assert (current["state"], current["triggered"], current["since"]) == ("raised", False, raised["since"])

        upstreams.prices["coingecko"] = 95_000
        cleared = await divergence_alert(ws)
        assert (cleared["state"], cleared["triggered"], cleared["spread_bps"], cleared["since"]) == (
            "cleared", True, 0.0, raised["since"])
        assert (await service.get("/status")).json()["divergences"] == []
        metrics = (await service.get("/metrics")).text
        assert sample(metrics, 'pricefeed_divergence_flagged{asset="BTC/USD"}') == 0.0
        assert sample(metrics, 'pricefeed_divergence_alerts_total{state="raised"}') == 1.0
        assert sample(metrics, 'pricefeed_divergence_alerts_total{state="cleared"}') == 1.0

        # Converged for several more CoinGecko polls: no further alert reaches the connection.
        polls = upstreams.coingecko.answered
        await upstreams.coingecko.wait_answered(polls + 5)
        await send(ws, {"type": "ping"})
        assert (await recv_json(ws))["type"] == "pong"
    assert (await service.get("/assets/BTC-USD")).json()["diverging"] is False
    spec = (await service.get("/openapi.json")).json()
    assert {"/assets", "/assets/{symbol}"} <= set(spec["paths"])
    unknown = await service.get("/assets/DOGE-EUR")
    assert (unknown.status_code, unknown.json()) == (404, {
        "error": "unknown asset 'DOGE-EUR': expected BASE/QUOTE, e.g. BTC/USD; known assets are BTC/USD"})

