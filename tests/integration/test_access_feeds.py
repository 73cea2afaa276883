"""A key's feeds and subscription limit on every face: refused with the face's own error, the connection goes on."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.app import App

from ..service import in_process
from ..wsclient import BTC, ETH, SOL, is_type, recv_until, send

KEYS = """
[[keys]]
name = "btc-only"
key = "btc-secret"
feeds = ["Crypto.BTC/USD"]

[[keys]]
name = "two"
key = "two-secret"
limits = { subscriptions = 2 }
"""

SUBSCRIPTION_IDS = itertools.count(1)
LAZER_IDS = {BTC: 1, ETH: 2, SOL: 6}
METRIC_FACE = {"streams": "streams_stream"}
SYMBOLS = {BTC: "BTC/USD", ETH: "ETH/USD", SOL: "SOL/USD"}

Subscribe = Callable[[ClientConnection, str], Awaitable[dict[str, Any]]]
"""Subscribe to a feed; the face's answer: its confirmation or its error."""


async def seed000(ws: ClientConnection, feed: str) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "feed_id": feed})
    return await recv_until(ws, lambda m: m["type"] in ("subscription_confirmed", "error"))


async def hermes(ws: ClientConnection, feed: str) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "ids": [feed]})
    return await recv_until(ws, is_type("response"))


async def lazer(ws: ClientConnection, feed: str) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "subscriptionId": next(SUBSCRIPTION_IDS), "priceFeedIds": [LAZER_IDS[feed]],
                    "properties": ["price"], "formats": [], "channel": "real_time"})
    return await recv_until(ws, lambda m: m["type"] in ("subscribed", "subscriptionError"))


async def streams(ws: ClientConnection, feed: str) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "symbol": SYMBOLS[feed]})
    return await recv_until(ws, lambda m: m["type"] in ("subscription", "error"))


def faces(app: App) -> dict[str, tuple[str, Subscribe]]:
    return {"seed000": (f"ws://127.0.0.1:{app.ws_port}/", seed000),
            "hermes_ws": (f"ws://127.0.0.1:{app.api_port}/ws", hermes),
            "lazer": (f"ws://127.0.0.1:{app.api_port}/v1/stream", lazer),
            "streams": (f"ws://127.0.0.1:{app.streams_port}/ws/stream", streams)}


def refused(face: str, reply: dict[str, Any]) -> str:
    """The error text of a face's refusal (asserting it is one)."""
    if face == "hermes_ws":
        assert reply["status"] == "error", reply
        return str(reply["error"])
    if face == "lazer":
        assert reply["type"] == "subscriptionError", reply
        return str(reply["error"])
    assert reply["type"] == "error", reply
    return str(reply["message"])


def accepted(face: str, reply: dict[str, Any]) -> bool:
    return reply.get("status") == "success" if face == "hermes_ws" else \
        reply["type"] in ("subscription_confirmed", "subscribed", "subscription")


async def test_a_key_sees_only_its_feeds_on_every_socket_face(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app:
        for face, (url, subscribe) in faces(app).items():
            async with connect(url + "?token=btc-secret") as ws:
                assert refused(face, await subscribe(ws, ETH)) == \
                    f"the API key 'btc-only' may not see {ETH}", face
                assert accepted(face, await subscribe(ws, BTC)), face  # the connection goes on
            assert app.metrics.total("pricefeed_refusals_total", face=METRIC_FACE.get(face, face),
                                     reason="feed_not_allowed") == 1


async def test_a_keys_subscription_limit_counts_over_its_connections_and_faces(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app:
        where = faces(app)
        for face, (url, subscribe) in where.items():
            other_face = "seed000" if face != "seed000" else "hermes_ws"
            other_url, other_subscribe = where[other_face]
            async with connect(url + "?token=two-secret") as ws, connect(other_url + "?token=two-secret") as other:
                assert accepted(face, await subscribe(ws, BTC)), face
                assert accepted(other_face, await other_subscribe(other, ETH)), face
                assert refused(face, await subscribe(ws, SOL)) == (
                    "subscription limit of the API key 'two' reached: at most 2 feeds over its connections "
                    "(2 already subscribed)"), face
                assert accepted(face, await subscribe(ws, BTC)), face  # one it holds already is not counted again
            assert app.services.access.subscriptions_of("two") == 0  # released when they went
            assert app.metrics.total("pricefeed_refusals_total", face=METRIC_FACE.get(face, face),
                                     reason="key_subscriptions") == 1
        url, subscribe = where["seed000"]
        async with connect(url + "?token=two-secret") as ws:  # an unsubscribe gives the room back
            for feed in (BTC, ETH):
                assert accepted("seed000", await subscribe(ws, feed))
            await send(ws, {"type": "unsubscribe", "feed_id": ETH})
            await recv_until(ws, is_type("unsubscription_confirmed"))
            assert accepted("seed000", await subscribe(ws, SOL))


async def test_hermes_http_refuses_a_feed_the_key_may_not_see_and_sse_counts_subscriptions(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}") as http:
        btc_only = {"Authorization": "Bearer btc-secret"}
        latest = await http.get("/v2/updates/price/latest", params={"ids[]": [BTC, ETH]}, headers=btc_only)
        assert latest.status_code == 403
        assert latest.json() == {"error": f"the API key 'btc-only' may not see {ETH}"}
        stream = await http.get("/v2/updates/price/stream", params={"ids[]": ETH}, headers=btc_only)
        assert stream.status_code == 403
        two = {"Authorization": "Bearer two-secret"}
        over = await http.get("/v2/updates/price/stream", params={"ids[]": [BTC, ETH, SOL]}, headers=two)
        assert over.status_code == 429
        assert "at most 2 feeds" in over.text
        async with http.stream("GET", "/v2/updates/price/stream", params={"ids[]": [BTC, ETH]}, headers=two) as sse:
            assert sse.status_code == 200
            async for line in sse.aiter_lines():
                if line.startswith("data:"):
                    assert {item["id"] for item in orjson.loads(line[5:])["parsed"]} <= {BTC, ETH}
                    break
            assert app.services.access.subscriptions_of("two") == 2
        assert (await http.get("/v2/updates/price/latest", params={"ids[]": "0x" + BTC},
                               headers=btc_only)).status_code == 200  # a price has come by now
        assert app.metrics.total("pricefeed_refusals_total", face="hermes_rest", reason="feed_not_allowed") == 1
        assert app.metrics.total("pricefeed_refusals_total", face="hermes_sse", reason="feed_not_allowed") == 1
        assert app.metrics.total("pricefeed_refusals_total", face="hermes_sse", reason="key_subscriptions") == 1
