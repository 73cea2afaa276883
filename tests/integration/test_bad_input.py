"""Bad input gets an `error` in the seed's form; the connection and every other client go on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ..service import ServiceProcess
from ..wsclient import BTC, ETH, is_type, recv_json, recv_until, send

UNKNOWN = "ab" * 32

BAD_MESSAGES: list[tuple[str | bytes, str]] = [
    ("{not json", "invalid JSON"),
    ("", "invalid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"subscribe"', "must be a JSON object"),
    ("42", "must be a JSON object"),
    ('{"feed_id": "x"}', 'missing "type"'),
    ('{"type": "subscribe_all"}', "unknown message type 'subscribe_all'"),
    ('{"type": 7}', "unknown message type 7"),
    ('{"type": "subscribe"}', 'subscribe needs a "feed_id"'),
    ('{"type": "unsubscribe"}', 'unsubscribe needs a "feed_id"'),
    ('{"type": "subscribe", "feed_id": "0x1234"}', "invalid feed_id '0x1234'"),
    ('{"type": "subscribe", "feed_id": 12}', "feed_id must be a string"),
    ('{"type": "subscribe", "feed_id": "' + "zz" * 32 + '"}', "expected 64 hex characters"),
    ('{"type": "subscribe", "feed_id": "' + UNKNOWN + '"}', f"unknown feed_id {UNKNOWN}"),
    ('{"type": "unsubscribe", "feed_id": "' + UNKNOWN + '"}', f"unknown feed_id {UNKNOWN}"),
    ('{"type": "subscribe_multiple"}', 'subscribe_multiple needs "subscriptions"'),
    ('{"type": "subscribe_multiple", "subscriptions": {}}', 'subscribe_multiple needs "subscriptions"'),
    ('{"type": "subscribe_multiple", "subscriptions": [{}]}', 'subscribe_multiple needs a "feed_id"'),
    (b"\x00\x01binary", "binary frames are not supported"),
]


async def _assert_still_serving(ws: ClientConnection) -> None:
    await send(ws, {"type": "subscribe", "feed_id": BTC})
    await recv_until(ws, is_type("subscription_confirmed"))
    assert (await recv_until(ws, is_type("price_update")))["data"]["id"] == BTC


async def test_each_bad_message_gets_an_error_and_the_connection_goes_on(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as bystander, connect(service.ws_url) as ws:
        await recv_json(bystander)
        await send(bystander, {"type": "subscribe", "feed_id": ETH})
        await recv_until(bystander, is_type("subscription_confirmed"))
        await recv_json(ws)
        for raw, expected in BAD_MESSAGES:
            await ws.send(raw)
            reply = await recv_until(ws, lambda m: m["type"] != "price_update")
            assert reply["type"] == "error", (raw, reply)
            assert expected in reply["message"], (raw, reply)
            assert set(reply) == {"type", "message"}
        await _assert_still_serving(ws)
        assert (await recv_until(bystander, is_type("price_update")))["data"]["id"] == ETH


async def test_subscribe_multiple_with_one_bad_entry_subscribes_the_good_ones(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe_multiple",
                        "subscriptions": [{"feed_id": BTC}, {"feed_id": UNKNOWN}, {"feed_id": ETH}]})
        replies = [await recv_until(ws, lambda m: m["type"] != "price_update") for _ in range(3)]
    assert [r["type"] for r in replies] == ["subscription_confirmed", "error", "subscription_confirmed"]
    assert UNKNOWN in replies[1]["message"]


async def test_oversized_message_closes_with_1009_and_others_go_on(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as bystander, connect(service.ws_url) as ws:
        await recv_json(bystander)
        await recv_json(ws)
        await ws.send('{"type": "subscribe", "feed_id": "' + "a" * 70_000 + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await _assert_still_serving(bystander)


async def test_message_flood_closes_with_1008_and_others_go_on(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as bystander, connect(service.ws_url) as ws:
        await recv_json(bystander)
        await recv_json(ws)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(1000):
                await ws.send('{"type": "nothing"}')
            while True:
                await recv_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "rate limit" in closed.value.rcvd.reason
        await _assert_still_serving(bystander)


async def test_subscription_limit_is_an_error_not_a_disconnect(tmp_path: Path) -> None:
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.05",
                               "--max-subscriptions", "1").start()
    try:
        async with connect(svc.ws_url) as ws:
            await recv_json(ws)
            await send(ws, {"type": "subscribe", "feed_id": BTC})
            await recv_until(ws, is_type("subscription_confirmed"))
            await send(ws, {"type": "subscribe", "feed_id": ETH})
            error = await recv_until(ws, is_type("error"))
            assert "subscription limit reached: at most 1" in error["message"]
            await send(ws, {"type": "subscribe", "feed_id": BTC})  # re-subscribing an existing feed is fine
            await recv_until(ws, is_type("subscription_confirmed"))
            assert (await recv_until(ws, is_type("price_update")))["data"]["id"] == BTC
    finally:
        await svc.stop()


async def test_fragmented_message_is_reassembled(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await ws.send(iter(['{"type": "subscr', 'ibe", "feed_id": "', BTC, '"}']))
        assert (await recv_until(ws, is_type("subscription_confirmed")))["feed_id"] == BTC


async def test_abrupt_disconnects_do_not_disturb_others(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as bystander:
        await recv_json(bystander)
        for _ in range(20):
            ws = await connect(service.ws_url)
            await send(ws, {"type": "subscribe", "feed_id": BTC})
            ws.transport.abort()
        await asyncio.sleep(0)  # let the aborts go out
        await _assert_still_serving(bystander)
