"""The seed-004 protocol's server messages, exactly as the seed shows them.

Every message carries ``timestamp``: ISO 8601 UTC with milliseconds and ``Z``
(the time the message was made; for data, the time of the price it carries).
"""

from __future__ import annotations

import orjson

from ...model import now_us
from ..simple_ws import iso_time

WELCOME = "WebSocket connection established successfully"
INVALID_JSON = "Invalid JSON format"


def now_iso() -> str:
    return iso_time(now_us())


def connection() -> bytes:
    return orjson.dumps({"type": "connection", "status": "connected", "timestamp": now_iso(), "message": WELCOME})


def subscription(status: str, symbol: str, data_types: list[str] | None = None,
                 recovered: bool | None = None) -> bytes:
    """``subscribed`` or ``unsubscribed``; ``data_types`` echoes a /ws/stream client's choice, when it made one;
    ``recovered`` answers a ``since_seq``."""
    message: dict[str, object] = {"type": "subscription", "status": status, "symbol": symbol,
                                  "timestamp": now_iso()}
    if data_types is not None:
        message["data_types"] = data_types
    if recovered is not None:
        message["recovered"] = recovered
    return orjson.dumps(message)


def heartbeat_ack() -> bytes:
    return orjson.dumps({"type": "heartbeat", "status": "ack", "timestamp": now_iso()})


def pong() -> bytes:
    return orjson.dumps({"type": "pong", "timestamp": now_iso()})


def error(message: str) -> bytes:
    return orjson.dumps({"type": "error", "message": message, "timestamp": now_iso()})
