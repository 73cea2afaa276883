"""/ws/analysis with the `websockets` client: each bar's indicators equal TA-Lib's batch output over the candles
/ws/stream reports, a new subscriber gets values at once, one series is computed however many clients watch it,
and bad choices get the protocol's error."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.analytics.candles import Bar, Interval
from pricefeed.analytics.indicators import Periods
from pricefeed.app import App

from ..talib_batch import batch
from ..wsclient import recv_json, recv_until, send

S1 = Interval("1s", 1_000_000)
SHORT = {"sma": 3, "ema": 3, "rsi": 3, "macd_fast": 2, "macd_slow": 3, "macd_signal": 2, "bollinger": 3,
         "atr": 3, "stochastic_k": 3, "stochastic_slow_k": 2, "stochastic_d": 2, "adx": 2}
"""Periods short enough that every indicator is warm within a few one-second bars."""


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    from ..service import in_process

    async with in_process(tmp_path, sim_interval=0.05, sim_equities=True, sim_market_hours=False,
                          candle_intervals=["1s", "1m"], seed=14) as service:
        yield service


def url(app: App, endpoint: str) -> str:
    return f"ws://127.0.0.1:{app.streams_port}/ws/{endpoint}"


async def subscribed(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    assert (await recv_json(ws))["type"] == "connection"
    await send(ws, {"type": "subscribe", **message})
    return await recv_until(ws, lambda m: m["type"] in ("subscription", "error"))


def as_bar(fields: dict[str, Any]) -> Bar:
    """A candle as /ws/stream reports it (prices at two decimals, as NSE's)."""
    when = datetime.strptime(fields["start"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    start = round(when.timestamp() * 1_000_000)
    return Bar("x", S1, start, -2, *(round(fields[k] * 100) for k in ("open", "high", "low", "close")),
               fields["volume"], fields["ticks"], None, start, final=fields["final"])


async def test_each_bars_indicators_equal_talibs_batch_over_the_streams_candles(app: App) -> None:
    async with connect(url(app, "stream")) as stream, connect(url(app, "analysis")) as analysis:
        reply = await subscribed(stream, {"symbol": "RELIANCE", "data_types": ["candle_1s"]})
        assert reply["status"] == "subscribed"
        reply = await subscribed(analysis, {"symbol": "RELIANCE", "interval": "1s", "periods": SHORT})
        assert (reply["type"], reply["status"], reply["symbol"]) == ("subscription", "subscribed", "RELIANCE")
        candles: dict[str, Bar] = {}
        checked = 0
        while checked < 8:
            message = await recv_until(analysis, lambda m: m["type"] == "data" and m["data"]["final"], timeout=10)
            data = message["data"]
            assert message["data_type"] == "technical_analysis" and message["symbol"] == "RELIANCE"
            assert set(data) == {"interval", "final", "bar", "technical_indicators", "patterns", "patterns_ready",
                                 "periods", "risk_metrics"}
            assert data["interval"] == "1s" and data["periods"] == asdict(Periods.parse(SHORT))
            while data["bar"]["start"] not in candles:
                candle = await recv_until(stream, lambda m: m.get("data_type") == "candle" and m["data"]["final"],
                                          timeout=10)
                candles[candle["data"]["start"]] = as_bar(candle["data"])
            series = [bar for start, bar in sorted(candles.items()) if start <= data["bar"]["start"]]
            assert data["technical_indicators"] == batch(series, Periods.parse(SHORT)), f"bar {len(series)}"
            checked += 1
        assert data["technical_indicators"]["rsi"] is not None and data["technical_indicators"]["adx"] is not None


async def test_a_new_subscriber_gets_warm_values_at_once_and_one_series_serves_every_client(app: App) -> None:
    async with connect(url(app, "analysis")) as first:
        await subscribed(first, {"symbol": "INFY", "interval": "1s", "periods": SHORT})
        for _ in range(6):  # six closed bars: every short indicator is warm
            await recv_until(first, lambda m: m["type"] == "data" and m["data"]["final"], timeout=10)
        async with connect(url(app, "analysis")) as second:
            await subscribed(second, {"symbol": "INFY", "interval": "1s", "periods": SHORT})
            snapshot = await recv_json(second)
            assert snapshot["type"] == "data" and snapshot["data"]["final"]
            assert all(v is not None for v in snapshot["data"]["technical_indicators"].values())
            assert app.analytics.analysis.status()["series"] == 1
            finals: list[list[dict[str, Any]]] = [[], []]
            while len(finals[1]) < 3 or len(finals[0]) < len(finals[1]):
                for index, ws in enumerate((first, second)):
                    if len(finals[index]) < 3:
                        message = await recv_json(ws, timeout=10)
                        if message["data"]["final"]:
                            finals[index].append(message)
            assert finals[0][:3] == finals[1][:3]  # the same bars, the same values: computed once for both
        default = await connect(url(app, "analysis"))
        await subscribed(default, {"symbol": "INFY"})
        assert app.analytics.analysis.status()["series"] == 2  # 1m with the default periods is another series
        await default.close()


@pytest.mark.parametrize(("extra", "error"), [
    ({"interval": "7m"}, "unknown interval '7m': this service keeps candles of 1s, 1m"),
    ({"periods": {"rsi": 0}}, "period 'rsi' must be an integer from 2 to 1000, got 0"),
    ({"periods": {"rsx": 3}}, "unknown period 'rsx'"),
    ({"data_types": ["tick"]}, "/ws/analysis has no data types to choose: \"data_types\" is for /ws/stream"),
])
async def test_bad_choices_get_an_error_and_the_connection_goes_on(app: App, extra: dict[str, Any],
                                                                   error: str) -> None:
    async with connect(url(app, "analysis")) as ws:
        reply = await subscribed(ws, {"symbol": "RELIANCE", **extra})
        assert reply["type"] == "error" and reply["message"].startswith(error)
        await send(ws, {"type": "ping"})
        assert (await recv_until(ws, lambda m: m["type"] == "pong"))["type"] == "pong"


async def test_after_a_restart_a_subscriber_gets_indicators_from_the_stored_candles_at_once(tmp_path: Path) -> None:
    from ..service import in_process

    settings: dict[str, Any] = {"sim_interval": 0.05, "sim_equities": True, "sim_market_hours": False,
                                "candle_intervals": ["1s"], "seed": 14, "risk_window": 3}
    async with in_process(tmp_path, **settings) as app, connect(url(app, "analysis")) as ws:
        await subscribed(ws, {"symbol": "TCS", "interval": "1s", "periods": SHORT})
        for _ in range(6):
            last = await recv_until(ws, lambda m: m["type"] == "data" and m["data"]["final"], timeout=10)
    # Subscribed too soon after the start to warm up from new bars.
    async with in_process(tmp_path, **settings) as app, connect(url(app, "analysis")) as ws:
        await subscribed(ws, {"symbol": "TCS", "interval": "1s", "periods": SHORT})
        snapshot = await recv_json(ws)
    assert snapshot["data"]["final"] and snapshot["data"]["bar"]["start"] >= last["data"]["bar"]["start"]
    assert all(v is not None for v in snapshot["data"]["technical_indicators"].values())
    risk = snapshot["data"]["risk_metrics"]  # warmed from the stored candles too
    assert risk["returns"] == 3 and None not in (risk["volatility"], risk["max_drawdown"], risk["var_95"])


async def test_risk_metrics_of_each_closed_bar_equal_numpys_over_the_streams_candles(tmp_path: Path) -> None:
    from ..service import in_process

    async with in_process(tmp_path, sim_interval=0.05, sim_equities=True, sim_market_hours=False,
                          candle_intervals=["1s"], seed=14, risk_window=4, risk_benchmark="BTC/USD") as app, \
            connect(url(app, "stream")) as stream, connect(url(app, "analysis")) as analysis:
        await subscribed(stream, {"symbol": "RELIANCE", "data_types": ["candle_1s"]})
        await subscribed(analysis, {"symbol": "RELIANCE", "interval": "1s"})
        closes: dict[str, float] = {}
        measured = 0
        while measured < 2:
            message = await recv_until(analysis, lambda m: m["type"] == "data" and m["data"]["final"], timeout=10)
            risk, start = message["data"]["risk_metrics"], message["data"]["bar"]["start"]
            assert risk["window"] == 4 and risk["benchmark"] == "BTC/USD" and risk["confidence"] == 0.95
            while start not in closes:
                candle = await recv_until(stream, lambda m: m.get("data_type") == "candle" and m["data"]["final"],
                                          timeout=10)
                closes[candle["data"]["start"]] = candle["data"]["close"]
            seen = np.array([c for s, c in sorted(closes.items()) if s <= start])
            if len(seen) < 5:  # fewer than four returns (the stream may have missed the first bar): no number yet
                assert risk["volatility"] is None and risk["beta"] is None
                continue
            window = seen[-5:]
            # RELIANCE trades around the clock here (no market hours): 86 400 one-second bars a day, 365 days.
            volatility = np.std(np.diff(np.log(window)), ddof=1) * math.sqrt(86_400 * 365)
            assert risk["volatility"] == pytest.approx(volatility, rel=1e-9)
            peaks = np.maximum.accumulate(window)
            assert risk["max_drawdown"] == pytest.approx(float(np.max((peaks - window) / peaks)), rel=1e-9, abs=0)
            worst = float(np.min(window[1:] / window[:-1] - 1))
            assert risk["var_95"] == pytest.approx(-worst * math.sqrt(86_400), rel=1e-9)
            assert risk["beta"] is not None
            measured += 1
        assert app.analytics.analysis.status()["risk"] == {
            "series": 1, "computations": app.analytics.analysis.risk.computations,  # type: ignore[union-attr]
            "window": 4, "benchmark": "Crypto.BTC/USD"}
