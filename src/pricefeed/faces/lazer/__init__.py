"""Pyth Lazer's ``/v1/stream`` and ``/v1/symbols``, served from every feed pricefeed has, whatever its source.

Channels ``real_time`` (every update) and ``fixed_rate@50ms``/``@200ms``/
``@1000ms`` (the changed feeds' latest prices at each tick of the channel's
clock). Lazer's own feeds keep Lazer's ids; the others get stable ids of
their own (``lazer_ids.py``), all listed at ``GET /v1/symbols``.
"""

from __future__ import annotations

from .auth import AUTH_SUBPROTOCOL, lazer_token
from .codec import FeedEntryCodec
from .session import LazerFace, LazerSession

__all__ = ["AUTH_SUBPROTOCOL", "PING_INTERVAL_S", "FeedEntryCodec", "LazerFace", "LazerSession", "lazer_token"]

PING_INTERVAL_S = 2.0
"""Lazer's SDKs give up on a connection silent for 5 s; under Node a ping counts, so quiet feeds keep it."""
