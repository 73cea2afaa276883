"""The real service with `--source hermes` against local Hermes servers: seed-000 clients see Hermes' prices."""

from __future__ import annotations

import asyncio
from pathlib import Path

from websockets.asyncio.client import connect

from pricefeed.model import scaled

from ..hermes_server import BTC, HermesServer, Respond, btc_item
from ..service import ServiceProcess
from ..wsclient import is_type, recv_json, recv_until, send


def btc_price(step: int) -> float:
    return scaled(int(btc_item(step)["price"]["price"]), -8)


async def test_one_of_two_upstreams_dies_and_returns_without_a_gap_a_duplicate_or_a_reordering(
        tmp_path: Path) -> None:
    a, b = HermesServer(), HermesServer()
    await a.start()
    await b.start()
    svc = ServiceProcess(tmp_path / "db", "--source", "hermes", "--pyth-sse-url", a.stream_url,
                         "--pyth-sse-url", b.stream_url, "--feeds", BTC, "--upstream-connections", "2")
    try:
        await svc.start()
        await a.next_connection(10)
        await b.next_connection(10)
        async with connect(svc.ws_url) as ws:
            await recv_json(ws)
            await send(ws, {"type": "subscribe", "feed_id": BTC})
            await recv_until(ws, is_type("subscription_confirmed"))
            received: list[float] = []

            async def slot(step: int, *servers: HermesServer) -> None:
                for server in servers:
                    server.broadcast([btc_item(step)])
                data = (await recv_until(ws, is_type("price_update"), timeout=10))["data"]
                assert data["id"] == BTC and data["status"] == "trading" and data["expo"] == -8
                received.append(data["price"])

            for step in range(1, 6):
                await slot(step, a, b)
            port = a.port
            await a.stop()
            for step in range(6, 11):
                await slot(step, b)
            await a.start(port)
            await a.next_connection(15)
            for step in range(11, 16):
                await slot(step, b, a)
            # One more slot from the returning upstream first: still exactly once.
            await slot(16, a, b)
        assert received == [btc_price(step) for step in range(1, 17)]
        status = (await svc.get("/status")).json()
        [hermes] = status["sources"]
        assert hermes["name"] == "hermes" and hermes["state"] == "connected" and hermes["simulated"] is False
        assert len(hermes["streams"]) == 2 and all(s["state"] == "connected" for s in hermes["streams"])
        assert sum(s["reconnects"] for s in hermes["streams"]) >= 1
        assert sum(s["duplicates_dropped"] for s in hermes["streams"]) >= 10
        assert (await svc.get("/health")).json()["status"] == "ok"
    finally:
        await svc.stop()
        await a.stop()
        await b.stop()


async def _health_reason(svc: ServiceProcess, containing: str, timeout_s: float = 15.0) -> str:
    """The /health reason that says ``containing``, once the service says it (another process: poll its API)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        health = (await svc.get("/health")).json()
        found = [reason for reason in health["reasons"] if containing in reason]
        if found:
            assert health["status"] == "degraded"
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/health never said {containing!r}: {health}")
        await asyncio.sleep(0.1)


async def test_offline_health_says_no_network_try_sim(tmp_path: Path) -> None:
    svc = ServiceProcess(tmp_path / "db", "--source", "hermes", "--pyth-sse-url", "http://nonexistent.invalid")
    try:
        await svc.start()
        reason = await _health_reason(svc, "no network: try `--source sim`")
        assert reason.startswith("source hermes is down: http://nonexistent.invalid#")
        status = (await svc.get("/status")).json()
        [hermes] = status["sources"]
        assert hermes["metadata"]["last_error"].endswith("(no network: try `--source sim`)")
    finally:
        await svc.stop()


async def test_a_401_from_hermes_points_at_the_api_key_option(tmp_path: Path) -> None:
    hermes = HermesServer()
    hermes.stream_script.extend(Respond(401, "Unauthorized") for _ in range(200))
    hermes.metadata_script.extend(Respond(401, "Unauthorized") for _ in range(200))
    await hermes.start()
    svc = ServiceProcess(tmp_path / "db", "--source", "hermes", "--pyth-sse-url", hermes.stream_url)
    try:
        await svc.start()
        reason = await _health_reason(svc, "--pyth-api-key")
        assert reason.endswith("HTTP 401: Unauthorized (Hermes requires an API key: pass --pyth-api-key)")
    finally:
        await svc.stop()
        await hermes.stop()
