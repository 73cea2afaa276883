"""The crypto-prices Socket.IO face (faces/crypto/channels.py) under arbitrary event payloads, driven through
python-socketio's own packet handling without a socket: ``subscribe``/``unsubscribe`` with anything, and any
other event, with and without an ack. A bad payload gets an ``error`` event ``{"message": ...}`` and, if asked,
the ack ``{"ok": false, "error": <the same message>}``; a good one the ack ``{"ok": true, "channel": ...}`` and,
on subscribe, the channel's current array at once."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.coins import SEED_COINS
from pricefeed.faces.crypto.channels import CryptoChannels
from pricefeed.faces.crypto.hub_link import HubLink
from pricefeed.faces.crypto.prices import ALL_COINS, coin_channel

from .service import built
from .strategies import JSON, errors_logged

LOOP = asyncio.new_event_loop()
HUB = built(Path(tempfile.mkdtemp(prefix="pricefeed-fuzz-"))).hub
CHANNELS = [ALL_COINS, coin_channel("BTC"), coin_channel("ETH"), coin_channel("DOGE")]
PAYLOADS = st.fixed_dictionaries({}, optional={"channel": st.sampled_from(CHANNELS) | JSON}) | JSON
EVENTS = st.tuples(st.sampled_from(["subscribe", "unsubscribe", "prices", "error"]) | st.text(max_size=8),
                   st.lists(PAYLOADS, max_size=2), st.none() | st.integers(0, 1000))


class Socket:
    """What the face reads of an Engine.IO socket: its queue of packets."""

    closed = closing = False

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()


async def connected() -> tuple[CryptoChannels, list[str], Socket]:
    channels = CryptoChannels(HubLink(HUB), SEED_COINS)
    channels.sio.async_handlers = False  # run each handler before the next packet, so its replies are in order
    sent: list[str] = []

    async def send(eio_sid: str, data: str) -> None:
        sent.append(data)

    async def send_packet(eio_sid: str, pkt: Any) -> None:
        sent.append(pkt.data)

    channels.sio.eio.send = send  # acks go out here, events (the error) through send_packet
    channels.sio.eio.send_packet = send_packet
    socket = channels.sio.eio.sockets["e1"] = Socket()
    await channels.sio._handle_eio_connect("e1", {})
    await channels.sio._handle_eio_message("e1", "0")
    assert sent.pop(0).startswith('0{"sid":')
    return channels, sent, socket


def expected(event: str, args: list[Any]) -> tuple[str | None, str | None]:
    """(the channel, None) for a good subscribe or unsubscribe; (None, the start of the error) otherwise."""
    if event not in ("subscribe", "unsubscribe"):
        return None, f"unknown event {event!r}"
    if len(args) != 1 or not isinstance(args[0], dict):
        return None, f"{event} expects one object"
    channel = args[0].get("channel")
    if not isinstance(channel, str):
        return None, f"{event} expects one object"
    if channel not in CHANNELS[:3]:
        return None, "unknown channel"
    return channel, None


@given(st.lists(EVENTS, min_size=1, max_size=5))
@example([("subscribe", [{"channel": ALL_COINS}, {"extra": 1}], 1)])
@example([("subscribe", [], None)])
def test_every_event_gets_the_faces_answer(events: list[tuple[str, list[Any], int | None]]) -> None:
    LOOP.run_until_complete(_run(events))


async def _run(events: list[tuple[str, list[Any], int | None]]) -> None:
    channels, sent, socket = await connected()
    with errors_logged() as errors:
        for event, args, ack in events:
            await channels.sio._handle_eio_message("e1", "2" + ("" if ack is None else str(ack))
                                                   + json.dumps([event, *args]))
            channel, problem = expected(event, args)
            if problem is not None:
                error = json.loads(sent.pop(0)[1:])
                assert error[0] == "error" and list(error[1]) == ["message"]
                message = error[1]["message"]
                assert message.startswith(problem), (event, args, message)
                if ack is not None:
                    assert sent.pop(0) == f"3{ack}" + json.dumps([{"ok": False, "error": message}],
                                                                  separators=(",", ":"))
            else:
                if ack is not None:
                    assert json.loads(sent.pop(0)[1 + len(str(ack)):]) == [{"ok": True, "channel": channel}]
                if event == "subscribe":
                    snapshot = json.loads(socket.queue.get_nowait().data[1:])
                    assert snapshot[0] == "crypto-prices" and isinstance(snapshot[1], list)
            assert sent == [] and socket.queue.empty()
    assert errors == []
