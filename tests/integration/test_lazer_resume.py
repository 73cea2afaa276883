"""/v1/stream's sinceSeq (a pricefeed addition) with the `websockets` client: a real_time subscription that comes
back with the last seq it saw of each feed gets exactly the missed updates, in order, then live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.app import App
from pricefeed.model import PriceUpdate

from ..service import in_process
from ..wsclient import BTC, ETH

LAZER_OF = {1: BTC, 2: ETH}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path, sim_interval=0.05, seed=6) as service:
        yield service


def subscribe(since_seq: dict[str, int] | None = None, channel: str = "real_time") -> str:
    request: dict[str, Any] = {"type": "subscribe", "subscriptionId": 7, "priceFeedIds": [1, 2],
                               "properties": ["price"], "formats": [], "channel": channel}
    if since_seq is not None:
        request["sinceSeq"] = since_seq
    return orjson.dumps(request).decode()


async def entries(ws: ClientConnection, until: dict[int, int]) -> dict[int, list[int]]:
    """Each feed's seqs, in arrival order, until every feed reached its ``until`` seq."""
    got: dict[int, list[int]] = {1: [], 2: []}
    while any(not got[i] or got[i][-1] < until[i] for i in until):
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "streamUpdated", message
        for entry in message["parsed"]["priceFeeds"]:
            got[entry["priceFeedId"]].append(entry["seq"])
    return got


async def published_past(app: App, seqs: dict[int, int]) -> None:
    reached = asyncio.Event()

    def watch(updates: list[PriceUpdate]) -> None:
        if all(app.hub.latest[LAZER_OF[i]].seq >= seq for i, seq in seqs.items()):
            reached.set()

    app.hub.add_listener(watch)
    await asyncio.wait_for(reached.wait(), 10)


async def test_a_real_time_subscription_back_with_since_seq_misses_nothing(app: App) -> None:
    url = f"ws://127.0.0.1:{app.api_port}/v1/stream"
    async with connect(url) as ws:
        await ws.send(subscribe({}))  # an empty sinceSeq: entries carry seq, the snapshot is the latest
        assert orjson.loads(await ws.recv()) == {"type": "subscribed", "subscriptionId": 7, "recovered": True}
        first = await entries(ws, {1: 0, 2: 0})
        seen = {i: seqs[-1] for i, seqs in first.items()}
    await published_past(app, {i: seq + 6 for i, seq in seen.items()})
    async with connect(url) as ws:
        await ws.send(subscribe({str(i): seq for i, seq in seen.items()}))
        assert orjson.loads(await ws.recv()) == {"type": "subscribed", "subscriptionId": 7, "recovered": True}
        got = await entries(ws, {i: seq + 15 for i, seq in seen.items()})
    for i, seqs in got.items():
        assert seqs == list(range(seen[i] + 1, seen[i] + 16)), f"feed {i}: {seqs}"


async def test_bad_since_seq_in_lazers_error_form(app: App) -> None:
    async with connect(f"ws://127.0.0.1:{app.api_port}/v1/stream") as ws:
        for bad in ([1], {"1": -1}, {"x": 1}, {"1": "2"}):
            await ws.send(orjson.dumps({"type": "subscribe", "subscriptionId": 4, "priceFeedIds": [1],
                                        "properties": ["price"], "formats": [], "channel": "real_time",
                                        "sinceSeq": bad}).decode())
            reply = orjson.loads(await ws.recv())
            assert reply["type"] == "subscriptionError" and reply["subscriptionId"] == 4, reply
            assert reply["error"].startswith("invalid sinceSeq"), reply
        await ws.send(subscribe({"1": 3}, channel="fixed_rate@200ms"))
        reply = orjson.loads(await ws.recv())
        assert reply == {"type": "subscriptionError", "subscriptionId": 7, "error": reply["error"]}
        assert reply["error"].startswith("sinceSeq resumes real_time subscriptions only")
