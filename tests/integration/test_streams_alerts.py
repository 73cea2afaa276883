"""/ws/alerts and REST /alerts against the real service with the `websockets` and httpx clients: a firing reaches
exactly its owner's connections subscribed to the symbol, once per crossing; the seed's lists and fields; alerts
created, listed and deleted both ways; bad input gets the protocol's error; alerts survive a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.app import App

from ..service import in_process
from ..wsclient import recv_json, recv_until, send

SETTINGS: dict[str, Any] = {"sim_interval": 0.05, "sim_equities": True, "sim_market_hours": False,
                            "candle_intervals": ["1s", "1m"], "seed": 4}
LISTS = ("price_alerts", "volume_alerts", "breakout_alerts", "divergence_alerts")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path, **SETTINGS) as service:
        yield service


def url(app: App, query: str = "") -> str:
    return f"ws://127.0.0.1:{app.streams_port}/ws/alerts{query}"


async def subscribed(ws: ClientConnection, symbol: str, **extra: Any) -> dict[str, Any]:
    """Subscribe; the snapshot of the owner's alerts on the symbol that follows the confirmation."""
    assert (await recv_json(ws))["type"] == "connection"
    await send(ws, {"type": "subscribe", "symbol": symbol, **extra})
    reply = await recv_json(ws)
    assert (reply["type"], reply["status"], reply["symbol"]) == ("subscription", "subscribed", symbol)
    snapshot = await recv_json(ws)
    assert (snapshot["type"], snapshot["data_type"], snapshot["symbol"]) == ("data", "alerts", symbol)
    return snapshot


async def command(ws: ClientConnection, message: dict[str, Any], reply_type: str) -> dict[str, Any]:
    await send(ws, message)
    return await recv_until(ws, lambda m: m["type"] in (reply_type, "error"))


async def nothing_but_pong(ws: ClientConnection) -> None:
    """The connection got nothing since: a ping's pong is the next message."""
    await send(ws, {"type": "ping"})
    assert (await recv_json(ws))["type"] == "pong"


async def test_a_firing_reaches_only_its_owners_connections_on_the_symbol_once(app: App) -> None:
    async with connect(url(app, "?owner=alice")) as alice, connect(url(app, "?owner=alice")) as alice_too, \
            connect(url(app, "?owner=alice")) as alice_tcs, connect(url(app)) as bob, \
            connect(f"ws://127.0.0.1:{app.streams_port}/ws/stream") as stream:
        empty = await subscribed(alice, "RELIANCE")
        assert empty["data"] == {"owner": "alice", "price_alerts": [], "volume_alerts": [], "breakout_alerts": [],
                                 "divergence_alerts": []}
        await subscribed(alice_too, "RELIANCE")
        await subscribed(alice_tcs, "TCS")
        assert (await subscribed(bob, "RELIANCE", owner="bob"))["data"]["owner"] == "bob"
        await command(bob, {"type": "create_alert", "symbol": "RELIANCE",
                            "rule": {"type": "price_below", "level": 0.01}}, "alert_created")
        # Any price is above 0.01: the next tick fires it, and it stays disarmed (never below 0.01 - 0.00001).
        created = await command(alice, {"type": "create_alert", "symbol": "RELIANCE",
                                        "rule": {"type": "price_above", "level": 0.01}}, "alert_created")
        alert = created["alert"]
        assert created["owner"] == "alice" and alert["symbol"] == "RELIANCE" and alert["type"] == "price_above"
        assert alert["rule"] == {"type": "price_above", "level": 0.01, "hysteresis": 0.00001}
        assert (alert["triggered"], alert["triggers"], alert["value"], alert["triggered_at"]) == (False, 0, None, None)
        for ws in (alice, alice_too):
            fired = await recv_until(ws, lambda m: m["type"] == "data")
            assert set(fired["data"]) == {"owner", *LISTS}
            (got,) = fired["data"]["price_alerts"]
            assert fired["data"]["volume_alerts"] == fired["data"]["breakout_alerts"] == []
            assert fired["data"]["divergence_alerts"] == []  # one source: nothing to compare
            assert (got["id"], got["triggered"], got["triggers"], got["armed"]) == (alert["id"], True, 1, False)
            assert got["value"] > 0.01 and got["triggered_at"] == fired["timestamp"]
        # Ten more RELIANCE prices: no second firing, and nothing to bob or to alice's TCS connection.
        await send(stream, {"type": "subscribe", "symbol": "RELIANCE"})
        for _ in range(12):
            await recv_until(stream, lambda m: m["type"] == "data")
        for ws in (alice, alice_too, alice_tcs, bob):
            await nothing_but_pong(ws)
        listed = await command(alice, {"type": "list_alerts"}, "alerts")
        assert [(a["id"], a["triggers"], a["triggered"]) for a in listed["alerts"]] == [(alert["id"], 1, False)]


async def test_create_list_and_delete_over_the_websocket_and_rest(app: App) -> None:
    base = f"http://127.0.0.1:{app.streams_port}"
    async with connect(url(app)) as ws, httpx.AsyncClient(base_url=base) as http:
        assert (await recv_json(ws))["type"] == "connection"
        made = await http.post("/alerts", json={"owner": "carol", "symbol": "btc",
                                                "rule": {"type": "breakout_high", "bars": 5, "interval": "1s"}})
        assert made.status_code == 201
        rest_alert = made.json()["alert"]
        assert (rest_alert["symbol"], rest_alert["rule"]) == (
            "BTC/USD", {"type": "breakout_high", "interval": "1s", "bars": 5, "hysteresis": None})
        ws_alert = (await command(ws, {"type": "create_alert", "owner": "carol", "symbol": "RELIANCE",
                                       "rule": {"type": "volume_spike", "multiple": 4}}, "alert_created"))["alert"]
        assert ws_alert["rule"] == {"type": "volume_spike", "interval": "1m", "multiple": 4.0, "period": 20}
        listed = (await http.get("/alerts", params={"owner": "carol"})).json()["alerts"]
        assert [a["id"] for a in listed] == [rest_alert["id"], ws_alert["id"]]
        only = await command(ws, {"type": "list_alerts", "symbol": "BTC/USD"}, "alerts")
        assert [a["id"] for a in only["alerts"]] == [rest_alert["id"]]
        assert (await http.get("/alerts", params={"owner": "dave"})).json()["alerts"] == []
        assert (await http.delete(f"/alerts/{ws_alert['id']}", params={"owner": "dave"})).status_code == 404
        deleted = await command(ws, {"type": "delete_alert", "alert_id": ws_alert["id"]}, "alert_deleted")
        assert deleted["alert_id"] == ws_alert["id"]
        gone = await http.delete(f"/alerts/{rest_alert['id']}", params={"owner": "carol"})
        assert gone.status_code == 200 and gone.json()["deleted"] is True
        assert (await command(ws, {"type": "list_alerts"}, "alerts"))["alerts"] == []
        bad = await http.post("/alerts", json={"owner": "carol", "symbol": "RELIANCE", "rule": {"type": "nope"}})
        assert bad.status_code == 400 and bad.json()["error"].startswith("unknown alert type 'nope'")
        docs = (await http.get("/openapi.json")).json()
        assert set(docs["paths"]["/alerts"]) == {"get", "post"} and "/alerts/{alert_id}" in docs["paths"]


@pytest.mark.parametrize(("message", "error"), [
    ({"type": "create_alert", "symbol": "RELIANCE", "rule": {"type": "price_above", "level": 1}},
     'create_alert needs an "owner" (in the message, or ?owner= in the URL)'),
    ({"type": "create_alert", "owner": "erin", "symbol": "RELIANCE", "rule": {"type": "price_above"}},
     '"level" must be a number, got None'),
    ({"type": "create_alert", "owner": "erin", "symbol": "NOPE", "rule": {"type": "price_above", "level": 1}},
     "unknown symbol"),
    ({"type": "delete_alert", "owner": "erin", "alert_id": "a1"}, "owner 'erin' has no alert 'a1'"),
    ({"type": "list_alerts", "owner": ""}, '"owner" must be a non-empty string'),
    ({"type": "fly"}, "unknown message type 'fly': expected one of subscribe, unsubscribe, heartbeat, ping, "
                      "create_alert, list_alerts, delete_alert"),
])
async def test_bad_input_gets_an_error_and_the_connection_goes_on(app: App, message: dict[str, Any],
                                                                  error: str) -> None:
    async with connect(url(app)) as ws:
        assert (await recv_json(ws))["type"] == "connection"
        reply = await command(ws, message, "never")
        assert reply["type"] == "error" and reply["message"].startswith(error), reply
        await nothing_but_pong(ws)


async def test_one_connection_one_owner(app: App) -> None:
    async with connect(url(app, "?owner=frank")) as ws:
        assert (await recv_json(ws))["type"] == "connection"
        reply = await command(ws, {"type": "list_alerts", "owner": "grace"}, "alerts")
        assert reply["message"].startswith("this connection belongs to owner 'frank'")


async def test_alerts_and_their_last_trigger_survive_a_restart(tmp_path: Path) -> None:
    async with in_process(tmp_path, **SETTINGS) as app, connect(url(app, "?owner=heidi")) as ws:
        await subscribed(ws, "RELIANCE")
        alert = (await command(ws, {"type": "create_alert", "symbol": "RELIANCE",
                                    "rule": {"type": "price_above", "level": 0.01}}, "alert_created"))["alert"]
        fired = (await recv_until(ws, lambda m: m["type"] == "data"))["data"]["price_alerts"][0]
    async with in_process(tmp_path, **SETTINGS) as app:
        base = f"http://127.0.0.1:{app.streams_port}"
        async with httpx.AsyncClient(base_url=base) as http:
            (kept,) = (await http.get("/alerts", params={"owner": "heidi"})).json()["alerts"]
        assert (kept["id"], kept["rule"], kept["triggers"], kept["armed"]) == (alert["id"], alert["rule"], 1, False)
        assert (kept["value"], kept["triggered_at"]) == (fired["value"], fired["triggered_at"])
