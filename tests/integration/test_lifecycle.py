"""Start, stop and restart: graceful shutdown, and last prices kept across restarts and kill -9."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ..service import ServiceProcess
from ..wsclient import BTC, ETH, is_type, recv_json, recv_until, send


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_closes_clients_with_1001_and_exits_0(tmp_path: Path, signum: int) -> None:
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.05").start()
    try:
        async with connect(svc.ws_url) as ws:
            await recv_json(ws)
            await send(ws, {"type": "subscribe", "feed_id": BTC})
            await recv_until(ws, is_type("price_update"))
            started = time.monotonic()
            svc.signal(signum)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await recv_json(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert await svc.wait_exit(timeout_s=5) == 0
        assert time.monotonic() - started < 5
        assert "shutting down" in svc.log() and "stopped" in svc.log()
    finally:
        await svc.stop()


async def _record_prices(svc: ServiceProcess, count: int) -> dict[str, list[tuple[float, str]]]:
    """Subscribe to BTC and ETH and keep every (price, publish_time) seen."""
    seen: dict[str, list[tuple[float, str]]] = {BTC: [], ETH: []}
    async with connect(svc.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC}, {"feed_id": ETH}]})
        while min(len(v) for v in seen.values()) < count:
            data = (await recv_until(ws, is_type("price_update")))["data"]
            seen[data["id"]].append((data["price"], data["publish_time"]))
    return seen


async def _wait_for_store_flush(svc: ServiceProcess) -> None:
    """Wait until the store has written at least twice since now (so the prices above are on disk)."""
    first = (await svc.get("/status")).json()["store"]["flushes"]

    async def flushed() -> None:
        while (await svc.get("/status")).json()["store"]["flushes"] < first + 2:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(flushed(), 10)


async def _snapshot_after_restart(svc: ServiceProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    async with connect(svc.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "feed_id": BTC})
        await recv_until(ws, is_type("subscription_confirmed"))
        snapshot = await recv_json(ws)
        await send(ws, {"type": "get_available_feeds"})
        available = await recv_until(ws, is_type("available_feeds"))
    return snapshot, available


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
async def test_last_prices_survive_a_restart(tmp_path: Path, how: str) -> None:
    db = tmp_path / "pricefeed.db"
    first = await ServiceProcess(db, "--source", "sim", "--sim-interval", "0.1",
                                 "--store-flush-interval", "0.2").start()
    try:
        seen = await _record_prices(first, 5)
        before = (await first.get("/feeds")).json()
        await _wait_for_store_flush(first)
        if how == "kill -9":
            first.signal(signal.SIGKILL)
        else:
            first.signal(signal.SIGTERM)
        await first.wait_exit()
    finally:
        await first.stop()

    # No fresh update can arrive for an hour: what is served is what was stored.
    second = await ServiceProcess(db, "--source", "sim", "--sim-interval", "3600").start()
    try:
        snapshot, available = await _snapshot_after_restart(second)
        after = (await second.get("/feeds")).json()
        health = (await second.get("/health")).json()
    finally:
        await second.stop()

    data = snapshot["data"]
    assert snapshot["type"] == "price_update" and data["id"] == BTC
    assert data["status"] == "stale"
    last_seen_time = seen[BTC][-1][1]
    assert data["publish_time"] >= last_seen_time, "restored price is older than one already delivered"
    assert all(f["price"] is not None and f["status"] == "stale" for f in available["feeds"])
    assert len(available["feeds"]) == len(before) == 13
    restored = {f["id"]: f for f in after}
    for feed in before:
        assert restored[feed["id"]]["stale"] is True
        assert restored[feed["id"]]["publish_time"] >= feed["publish_time"]
        assert restored[feed["id"]]["attributes"] == feed["attributes"]
    assert health["status"] == "degraded" and "all 13 feeds are stale" in health["reasons"]


async def test_sigterm_closes_hermes_ws_with_1001_and_ends_sse_streams_cleanly(tmp_path: Path) -> None:
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.05").start()
    try:
        await svc.wait_for_prices()
        async with httpx.AsyncClient(base_url=svc.api_url, timeout=10) as http, \
                http.stream("GET", "/v2/updates/price/stream", params={"ids[]": BTC}) as stream, \
                connect(svc.api_url.replace("http", "ws") + "/ws") as ws:
            await send(ws, {"type": "subscribe", "ids": [BTC]})
            await recv_until(ws, is_type("price_update"))
            lines = stream.aiter_lines()
            while not (await anext(lines)).startswith("data:"):
                pass
            svc.signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await recv_json(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            rest = [line async for line in lines]  # the chunked body ends: no error, no cut
        assert all(line.startswith(("id:", "data:")) or line == "" for line in rest)  # whole events, then the end
        assert await svc.wait_exit(timeout_s=5) == 0
        assert "Traceback" not in svc.log() and "CancelledError" not in svc.log()
    finally:
        await svc.stop()


async def test_prices_of_a_source_that_is_not_running_are_not_served_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "pricefeed.db"
    sim = await ServiceProcess(db, "--source", "sim", "--sim-interval", "0.1", "--store-flush-interval", "0.2").start()
    try:
        await sim.wait_for_prices()
        await _wait_for_store_flush(sim)
    finally:
        await sim.stop()
    # The default Hermes source, offline: it cannot fetch a price, and the simulated ones must not pass as its own.
    hermes = await ServiceProcess(db, "--source", "hermes", "--pyth-sse-url", "http://127.0.0.1:9/hermes").start()
    try:
        latest = await hermes.get("/v2/updates/price/latest", **{"ids[]": BTC})
        status = (await hermes.get("/status")).json()
        feed = (await hermes.get(f"/feeds/{BTC}")).json()
        health = (await hermes.get("/health")).json()
    finally:
        await hermes.stop()
    assert latest.status_code == 404
    # No price at all is said as such, not as "all feeds are stale" (which /feeds would contradict).
    assert any(reason.startswith("no prices yet for any of the") for reason in health["reasons"])
    assert not any("stale" in reason for reason in health["reasons"])
    assert status["simulated"] is False
    assert feed["price"] is None and feed["status"] == "unknown" and feed["stale"] is False
