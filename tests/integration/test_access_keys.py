"""API keys on every face of a running service, each refusing in its own way; limits cut only who is over them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from pricefeed.app import App
from pricefeed.faces.simple_ws import iso_time

from ..service import in_process
from ..wsclient import BTC, is_type, recv_json, recv_until, send

KEYS = """
[[keys]]
name = "full"
key = "full-secret"

[[keys]]
name = "hermes-only"
key = "hermes-secret"
faces = ["hermes"]

[[keys]]
name = "single"
key = "single-secret"
limits = { connections = 1 }

[[keys]]
name = "chatty"
key = "chatty-secret"
limits = { messages_per_second = 2 }
"""


def urls(app: App) -> dict[str, str]:
    return {"seed000": f"ws://127.0.0.1:{app.ws_port}/", "hermes_ws": f"ws://127.0.0.1:{app.api_port}/ws",
            "lazer": f"ws://127.0.0.1:{app.api_port}/v1/stream",
            "streams": f"ws://127.0.0.1:{app.streams_port}/ws/stream"}


async def refused_status(url: str, **kwargs: object) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=5, **kwargs):  # type: ignore[arg-type]
            pass
    return refused.value.response.status_code


async def test_every_socket_face_refuses_a_missing_or_wrong_key_and_takes_a_right_one(tmp_path: Path) -> None:
    async with in_process(tmp_path, api_key=["k-one", "k-two"]) as app:
        for face, url in urls(app).items():
            assert await refused_status(url) == 401, face
            assert await refused_status(url + "?token=wrong") == 401, face
            async with connect(url + "?token=k-two"):
                pass
            async with connect(url, additional_headers={"Authorization": "Bearer k-one"}):
                pass
        lazer = urls(app)["lazer"]
        async with connect(lazer, subprotocols=[Subprotocol("pyth-lazer-auth"), Subprotocol("k-one")]) as ws:
            assert ws.subprotocol == "pyth-lazer-auth"
        async with connect(lazer + "?ACCESS_TOKEN=k-two"):
            pass
        assert await refused_status(lazer, subprotocols=[Subprotocol("pyth-lazer-auth"), Subprotocol("nope")]) == 401
        assert app.metrics.total("pricefeed_refusals_total", face="lazer", reason="wrong_key") == 2
        assert app.metrics.total("pricefeed_refusals_total", face="seed000", reason="missing_key") == 1


async def test_http_needs_a_key_except_health(tmp_path: Path) -> None:
    async with in_process(tmp_path, api_key=["k-one"]) as app, httpx.AsyncClient() as http:
        api, streams = f"http://127.0.0.1:{app.api_port}", f"http://127.0.0.1:{app.streams_port}"
        missing = await http.get(f"{api}/v2/price_feeds")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "API key is required" in missing.json()["error"]
        assert (await http.get(f"{api}/feeds", params={"token": "bad"})).status_code == 401
        assert (await http.get(f"{api}/v2/price_feeds", params={"ACCESS_TOKEN": "k-one"})).status_code == 200
        assert (await http.get(f"{api}/metrics", headers={"Authorization": "Bearer k-one"})).status_code == 200
        assert (await http.get(f"{api}/health")).status_code == 200
        assert (await http.get(f"{streams}/connections")).status_code == 401
        assert (await http.get(f"{streams}/health")).status_code == 200
        stream = await http.get(f"{api}/v2/updates/price/stream", params={"ids[]": BTC})
        assert stream.status_code == 401
        assert app.metrics.total("pricefeed_refusals_total", face="hermes_rest", reason="missing_key") == 1
        assert app.metrics.total("pricefeed_refusals_total", face="hermes_sse", reason="missing_key") == 1


async def test_a_key_is_held_to_its_faces_and_its_connections(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app, httpx.AsyncClient() as http:
        where = urls(app)
        assert await refused_status(where["seed000"] + "?token=hermes-secret") == 403
        async with connect(where["hermes_ws"] + "?token=hermes-secret"):
            pass
        assert (await http.get(f"http://127.0.0.1:{app.api_port}/feeds",
                               headers={"Authorization": "Bearer hermes-secret"})).status_code == 403
        async with connect(where["seed000"] + "?token=single-secret") as first:
            assert await refused_status(where["lazer"] + "?ACCESS_TOKEN=single-secret") == 429
            await send(first, {"type": "subscribe", "feed_id": BTC})
            await recv_until(first, is_type("price_update"))  # the one it holds is not affected
        async with connect(where["lazer"] + "?ACCESS_TOKEN=single-secret"):  # released when it went
            pass
        api = f"http://127.0.0.1:{app.api_port}"
        async with http.stream("GET", f"{api}/v2/updates/price/stream", params={"ids[]": BTC},
                               headers={"Authorization": "Bearer single-secret"}) as sse:
            assert sse.status_code == 200  # an event stream is one of the key's connections
            assert await refused_status(where["hermes_ws"] + "?token=single-secret") == 429
            second = await http.get(f"{api}/v2/updates/price/stream", params={"ids[]": BTC, "token": "single-secret"})
            assert second.status_code == 429 and "has its 1 connections open already" in second.text


async def test_a_client_over_its_keys_message_rate_is_cut_and_no_other_client_notices(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app:
        url = urls(app)["seed000"]
        async with connect(url + "?token=full-secret") as calm, connect(url + "?token=chatty-secret") as chatty:
            await send(calm, {"type": "subscribe", "feed_id": BTC})
            await recv_until(calm, is_type("price_update"))
            for _ in range(10):
                await chatty.send(orjson.dumps({"type": "get_available_feeds"}).decode())
            with pytest.raises(ConnectionClosed) as cut:
                while True:
                    await asyncio.wait_for(chatty.recv(), 5)
            assert cut.value.rcvd is not None and cut.value.rcvd.code == 1008
            assert "message rate limit exceeded: at most 2 per second" in cut.value.rcvd.reason
            assert app.metrics.total("pricefeed_refusals_total", face="seed000", reason="key_messages") == 1
            ids = [(await recv_until(calm, is_type("price_update")))["data"]["id"] for _ in range(3)]
            assert [i.removeprefix("0x") for i in ids] == [BTC] * 3
            await send(calm, {"type": "get_available_feeds"})
            assert (await recv_until(calm, is_type("available_feeds")))["feeds"]


async def test_the_pythd_face_keeps_its_publisher_keys(tmp_path: Path) -> None:
    async with in_process(tmp_path, api_key=["k-one"], rpc=True, rpc_host="127.0.0.1", rpc_port=0) as app:
        port = app.listeners.port("pythd")
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "get_product_list"}).decode())
            reply = await recv_json(ws)
            assert reply["id"] == 1 and "result" in reply


BYTES_KEYS = """
[[keys]]
name = "calm"
key = "calm-secret"

[[keys]]
name = "greedy"
key = "greedy-secret"
limits = { bytes_per_second = 3000 }
"""


async def every_btc_update_after(app: App, calm: ClientConnection, cut: asyncio.Task[None]) -> None:
    """The calm client gets every BTC price the hub publishes while and after the other is cut, in order."""
    published: list[str] = []
    app.hub.add_listener(lambda updates: published.extend(
        iso_time(u.publish_time_us) for u in updates if u.feed_id == BTC))
    received: list[str] = []
    await cut
    while len(received) < 5 or received[-1] != published[-1]:
        received.append((await recv_until(calm, is_type("price_update")))["data"]["publish_time"])
    start = published.index(received[0])
    assert received == published[start:start + len(received)]


async def test_a_key_over_its_byte_budget_is_cut_and_no_other_client_notices(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(BYTES_KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app:
        url = urls(app)["seed000"]
        async with connect(url + "?token=calm-secret") as calm, connect(url + "?token=greedy-secret") as greedy:
            await send(calm, {"type": "subscribe", "feed_id": BTC})
            await recv_until(calm, is_type("price_update"))

            async def greedy_is_cut() -> None:
                await send(greedy, {"type": "subscribe_multiple",
                                    "subscriptions": [{"feed_id": f} for f in list(app.hub.feeds)[:40]]})
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(greedy.recv(), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
                assert closed.value.rcvd.reason == "byte rate limit exceeded: at most 3000 bytes per second per API key"

            await every_btc_update_after(app, calm, asyncio.create_task(greedy_is_cut()))
        assert app.metrics.total("pricefeed_refusals_total", face="seed000", reason="key_bytes") == 1


async def test_a_client_ip_over_its_byte_budget_is_cut(tmp_path: Path) -> None:
    async with in_process(tmp_path, ip_bytes_per_second=3000) as app:
        url = urls(app)["hermes_ws"]
        async with connect(url) as greedy:
            await send(greedy, {"type": "subscribe", "ids": list(app.hub.feeds)[:40], "verbose": True})
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(greedy.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "byte rate limit exceeded: at most 3000 bytes per second per client IP"
        assert app.metrics.total("pricefeed_refusals_total", face="hermes_ws", reason="ip_bytes") == 1
        async with connect(url) as calm:  # the IP's budget refills: a modest client from it goes on
            await send(calm, {"type": "subscribe", "ids": [BTC]})
            for _ in range(3):
                assert (await recv_until(calm, is_type("price_update")))["price_feed"]["id"] == BTC


async def test_a_keys_rest_requests_are_held_to_its_message_rate(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app, httpx.AsyncClient() as http:
        chatty = {"Authorization": "Bearer chatty-secret"}
        replies = [await http.get(f"http://127.0.0.1:{app.api_port}/feeds", headers=chatty) for _ in range(12)]
        statuses = [reply.status_code for reply in replies]
        assert statuses[:4] == [200] * 4  # a burst of two seconds' worth
        assert 429 in statuses  # 12 requests in far less than the 4 s they would need
        over = replies[statuses.index(429)]
        assert over.headers["retry-after"] == "1"
        assert "over its request rate: at most 2 per second" in over.json()["error"]
        assert (await http.get(f"http://127.0.0.1:{app.api_port}/feeds",
                               headers={"Authorization": "Bearer full-secret"})).status_code == 200  # others go on
        assert app.metrics.total("pricefeed_refusals_total", face="rest", reason="key_messages") == \
            statuses.count(429)
