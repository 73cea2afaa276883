"""/ws/stream's since_seq with the `websockets` client: a client that comes back with the last seq it saw gets
exactly the updates it missed, in order, then live, with no gap and no repeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.app import App
from pricefeed.model import PriceUpdate

from ..service import in_process
from ..wsclient import BTC, recv_json, recv_until, send


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path, sim_interval=0.05, seed=5) as service:
        yield service


def url(app: App, endpoint: str = "stream") -> str:
    return f"ws://127.0.0.1:{app.streams_port}/ws/{endpoint}"


async def published_past(app: App, seq: int) -> None:
    """Until the hub has accepted BTC's update ``seq`` (the market moves on while no client listens)."""
    reached = asyncio.Event()

    def watch(updates: list[PriceUpdate]) -> None:
        if any(u.feed_id == BTC and u.seq >= seq for u in updates):
            reached.set()

    app.hub.add_listener(watch)
    await asyncio.wait_for(reached.wait(), 10)


async def subscribed(ws: ClientConnection, **extra: Any) -> dict[str, Any]:
    await recv_json(ws)  # the welcome
    await send(ws, {"type": "subscribe", "symbol": "BTC/USD", **extra})
    return await recv_until(ws, lambda m: m["type"] in ("subscription", "error"))


async def seqs(ws: ClientConnection, count: int, key: Any) -> list[int]:
    return [key(await recv_until(ws, lambda m: m["type"] == "data")) for _ in range(count)]


@pytest.mark.parametrize(("data_types", "seq_of"), [
    (["tick"], lambda m: m["data"]["seq"]),
    (None, lambda m: m["seq"]),  # the seed's data message, with the seq next to its data
])
async def test_a_client_back_with_since_seq_misses_nothing(app: App, data_types: list[str] | None,
                                                           seq_of: Any) -> None:
    choice = {} if data_types is None else {"data_types": data_types}
    async with connect(url(app)) as ws:
        await subscribed(ws, data_types=["tick"])
        seen = await seqs(ws, 3, lambda m: m["data"]["seq"])
    await published_past(app, seen[-1] + 8)
    async with connect(url(app)) as ws:
        reply = await subscribed(ws, since_seq=seen[-1], **choice)
        assert (reply["status"], reply["recovered"]) == ("subscribed", True)
        got = await seqs(ws, 15, seq_of)
    assert got == list(range(seen[-1] + 1, seen[-1] + 16))


async def test_since_seq_errors(app: App) -> None:
    async with connect(url(app)) as ws:
        await recv_json(ws)  # the welcome
        for bad in (-1, "4", 2.5, True):
            reply = await ask(ws, since_seq=bad)
            assert reply["type"] == "error", reply
            assert reply["message"].startswith("since_seq must be a non-negative integer"), reply
        assert (await ask(ws, since_seq=0))["recovered"] is True, "the connection goes on"
    async with connect(url(app, "analysis")) as ws:
        reply = await subscribed(ws, since_seq=3)
        assert (reply["type"], reply["message"]) == ("error", '/ws/analysis does not resume: "since_seq" is for '
                                                              '/ws/stream')


async def test_a_seq_older_than_the_log_gets_the_latest_not_recovered(tmp_path: Path) -> None:
    async with in_process(tmp_path, sim_interval=0.05, seed=5, history_depth=0) as app:
        await published_past(app, 5)
        async with connect(url(app)) as ws:
            reply = await subscribed(ws, since_seq=1, data_types=["tick"])
            assert reply["recovered"] is False
            first = await recv_until(ws, lambda m: m["type"] == "data")
            assert first["data"]["seq"] >= 5


async def ask(ws: ClientConnection, **extra: Any) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "symbol": "BTC/USD", **extra})
    return await recv_until(ws, lambda m: m["type"] in ("subscription", "error"))
