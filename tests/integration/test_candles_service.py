"""Candles in the running service: a known tick sequence from a local Kite ticker gives known 1-minute bars,
each once, across a dropped upstream and across a restart (the store keeps the bars, the forming one too).

The ticks carry Kite's exchange timestamps from ten minutes ago, so every bar is known in advance; a long
``--candle-grace`` keeps the clock from closing any bar during the test, so only ticks close them.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.client import ClientConnection, connect

from pricefeed.faces.simple_ws import iso_time

from ..kite_server import FakeKiteTicker, KiteTick
from ..service import ServiceProcess
from ..wsclient import recv_json, recv_until, send

INSTRUMENTS = Path(__file__).parent.parent / "data" / "kite" / "instruments.csv"
RELIANCE = 738561


def base_minute() -> int:
    """A whole minute ten minutes ago, in the same IST day as the next five minutes."""
    base = (int(time.time()) - 600) // 60 * 60
    ist = ZoneInfo("Asia/Kolkata")
    end_day = datetime.fromtimestamp(base + 300, ist).date()
    while datetime.fromtimestamp(base, ist).date() != end_day:
        base += 60
    return base


def service(tmp_path: Path, kite: FakeKiteTicker) -> ServiceProcess:
    return ServiceProcess(tmp_path / "pricefeed.db", "--source", "kite", "--kite-url", kite.url,
                          "--kite-api-key", kite.api_key, "--kite-access-token", kite.access_token,
                          "--kite-instruments", str(INSTRUMENTS), "--kite-symbols", "RELIANCE",
                          "--candle-intervals", "1m", "--candle-grace", "3600", "--store-flush-interval", "0.2")


def bar(start: int, o: float, h: float, low: float, c: float, volume: int, ticks: int, final: bool) -> dict[str, Any]:
    return {"interval": "1m", "start": iso_time(start * 1_000_000), "end": iso_time((start + 60) * 1_000_000),
            "open": o, "high": h, "low": low, "close": c, "volume": volume, "ticks": ticks, "final": final}


class Watcher:
    """A /ws/stream client of RELIANCE's ticks and 1-minute candles."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.candles: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, svc: ServiceProcess) -> Watcher:
        ws = await connect(svc.streams_url + "/ws/stream")
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "symbol": "RELIANCE", "data_types": ["tick", "candle_1m"]})
        reply = await recv_json(ws)
        assert reply["status"] == "subscribed", reply
        return cls(ws)

    async def until_tick(self, price: float) -> None:
        """Read (keeping the candles) until the tick of ``price`` has come."""
        while True:
            message = await recv_json(self.ws, timeout=10)
            if message["data_type"] == "candle":
                self.candles.append(message["data"])
            elif message["data"]["price"] == price:
                return

    async def ping(self) -> None:
        """Read everything sent so far (the pong comes after it)."""
        await send(self.ws, {"type": "ping"})
        while (message := await recv_until(self.ws, lambda m: True, timeout=10))["type"] != "pong":
            if message.get("data_type") == "candle":
                self.candles.append(message["data"])

    def finals(self) -> list[dict[str, Any]]:
        return [c for c in self.candles if c["final"]]


async def play(kite: FakeKiteTicker, watcher: Watcher, base: int, ticks: list[tuple[int, int, int, int]]) -> None:
    """Send ticks (second, paise, day volume, quantity), each after the previous one reached the client."""
    for second, paise, volume, quantity in ticks:
        await kite.send_ticks([KiteTick(RELIANCE, paise, quantity=quantity, average=paise, volume=volume,
                                        open=140000, high=142000, low=139000, close=139500,
                                        last_trade_time=base + second, exchange_timestamp=base + second,
                                        bids=[(10, paise - 5, 1)], asks=[(12, paise + 5, 2)])])
        await watcher.until_tick(paise / 100)


async def test_known_ticks_give_known_bars_across_a_drop_and_a_restart(tmp_path: Path) -> None:
    base = base_minute()
    b0 = bar(base, 1410.0, 1410.5, 1409.9, 1409.9, 50 + 100 + 80, 3, True)
    b1 = bar(base + 60, 1410.1, 1412.0, 1410.1, 1412.0, 20 + 100 + 50, 3, True)
    async with FakeKiteTicker(heartbeat_s=0.3).running() as kite:
        first = await service(tmp_path, kite).start()
        try:
            await kite.wait_streaming({RELIANCE}, "full")
            watcher = await Watcher.open(first)
            await play(kite, watcher, base, [(5, 141000, 1000, 50), (20, 141050, 1100, 100), (59, 140990, 1180, 80),
                                             (60, 141010, 1200, 20), (75, 141100, 1300, 100)])
            kite.drop()  # the upstream fails; the source reconnects and subscribes again
            await kite.wait_streaming({RELIANCE}, "full", connections=2)
            await play(kite, watcher, base, [(90, 141200, 1350, 50), (121, 141150, 1400, 50)])
            await watcher.ping()
            assert watcher.finals() == [b0, b1]  # each bar once, exactly
            assert watcher.candles[-1] == bar(base + 120, 1411.5, 1411.5, 1411.5, 1411.5, 50, 1, False)
            await watcher.ws.close()
        finally:
            await first.stop()

        second = await service(tmp_path, kite).start()
        try:
            await kite.wait_streaming({RELIANCE}, "full", connections=3)
            watcher = await Watcher.open(second)
            await watcher.ping()
            # On subscribe: the kept bars at once, the forming one as it was when the service stopped.
            assert watcher.candles == [b0, b1, bar(base + 120, 1411.5, 1411.5, 1411.5, 1411.5, 50, 1, False)]
            watcher.candles.clear()
            await play(kite, watcher, base, [(130, 141300, 1500, 100), (185, 141250, 1520, 20)])
            await watcher.ping()
            assert watcher.finals() == [bar(base + 120, 1411.5, 1413.0, 1411.5, 1413.0, 50 + 100, 2, True)]
            assert watcher.candles[-1] == bar(base + 180, 1412.5, 1412.5, 1412.5, 1412.5, 20, 1, False)
            await watcher.ws.close()
        finally:
            await second.stop()
