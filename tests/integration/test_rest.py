"""The REST API on the real service."""

from __future__ import annotations

from ..service import ServiceProcess
from ..wsclient import BTC


async def test_health_is_ok_while_serving(service: ServiceProcess) -> None:
    response = await service.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["reasons"] == [] and body["sources"] == {"sim": "connected"}


async def test_feeds_have_their_latest_price_and_can_be_filtered(service: ServiceProcess) -> None:
    everything = (await service.get("/feeds")).json()
    assert len(everything) == 13
    btc = next(f for f in everything if f["id"] == BTC)
    assert btc["symbol"] == "Crypto.BTC/USD" and btc["display_symbol"] == "BTC/USD"
    assert btc["simulated"] is True and btc["source"] == "sim" and btc["attributes"]["simulated"] == "true"
    assert btc["price"] > 0 and btc["expo"] == -8 and btc["status"] == "trading" and btc["stale"] is False
    assert [f["symbol"] for f in (await service.get("/feeds", symbol="uSd")).json()] == sorted(
        f["symbol"] for f in everything if "usd" in f["symbol"].lower())
    assert [f["symbol"] for f in (await service.get("/feeds", symbol="btc")).json()] == ["Crypto.BTC/USD"]
    assert [f["symbol"] for f in (await service.get("/feeds", asset_type="FX")).json()] == ["FX.EUR/USD"]
    assert [f["symbol"] for f in (await service.get("/feeds", asset_type="equity", symbol="aapl")).json()] == [
        "Equity.US.AAPL/USD"]
    assert (await service.get("/feeds", symbol="nothing-like-this")).json() == []


async def test_one_feed_by_id_in_any_form(service: ServiceProcess) -> None:
    assert (await service.get("/feeds/0x" + BTC.upper())).json()["id"] == BTC


async def test_errors_are_json_with_the_right_status(service: ServiceProcess) -> None:
    cases = [
        ("/feeds/0x1234", {}, 400,
         "invalid feed_id '0x1234': expected 64 hex characters, optionally prefixed with 0x"),
        ("/feeds/" + "ab" * 32, {}, 404, "unknown feed_id " + "ab" * 32),
        ("/feeds", {"asset_type": "bonds"}, 400, "unknown asset_type 'bonds': known types are crypto, equity, fx"),
        ("/no/such/thing", {}, 404, "no such endpoint: /no/such/thing"),
    ]
    for path, params, status, message in cases:
        response = await service.get(path, **params)
        assert response.status_code == status, path
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": message}


async def test_status_reports_connections_subscriptions_and_sources(service: ServiceProcess) -> None:
    from websockets.asyncio.client import connect

    from ..wsclient import is_type, recv_json, recv_until, send

    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "feed_id": BTC})
        await recv_until(ws, is_type("price_update"))
        status = (await service.get("/status")).json()
    assert status["connections"] == 1 and status["subscriptions"] == 1
    assert status["simulated"] is True and status["feeds"] == 13 and status["stale_feeds"] == 0
    [sim] = status["sources"]
    assert sim["name"] == "sim" and sim["state"] == "connected" and sim["simulated"] is True
    assert sim["reconnects"] == 0 and sim["last_message_age_s"] < 5 and sim["updates_total"] > 0
    assert {"updates_per_second", "deliveries_per_second", "queued_bytes"} <= set(status["hub"])
    assert 13 <= status["hub"]["history_updates"] <= status["hub"]["updates_total"]  # each feed's first second
    assert status["uptime_s"] > 0


async def test_openapi_docs(service: ServiceProcess) -> None:
    assert (await service.get("/docs")).status_code == 200
    spec = (await service.get("/openapi.json")).json()
    assert {"/health", "/feeds", "/feeds/{feed_id}", "/status"} <= set(spec["paths"])
