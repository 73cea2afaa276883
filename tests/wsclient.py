"""Small helpers for talking to the seed-000 protocol with the `websockets` client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
SOL = "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    import asyncio

    message = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    decoded = json.loads(message)
    assert isinstance(decoded, dict)
    return decoded


async def recv_until(ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool],
                     timeout: float = 5.0) -> dict[str, Any]:
    """The first message matching ``predicate`` (earlier ones are skipped)."""
    import asyncio

    async def scan() -> dict[str, Any]:
        while True:
            message = await recv_json(ws, timeout)
            if predicate(message):
                return message

    return await asyncio.wait_for(scan(), timeout)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


def is_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: message.get("type") == kind
