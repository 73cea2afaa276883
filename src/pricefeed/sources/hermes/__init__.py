"""Pyth Hermes as an upstream: ``wire`` reads its format, ``stream`` holds one SSE stream, ``metadata`` polls the
feed list, and ``source`` plans the streams and keeps every request inside one budget."""

from __future__ import annotations

from .metadata import MetadataPoller
from .source import DEFAULT_FEEDS, HermesSource, plan_shards
from .stream import HermesStream, StreamState
from .wire import (
    METADATA_PATH,
    PROVISIONAL_EXPO,
    STREAM_PATH,
    DecodedEvent,
    Endpoint,
    HermesProtocolError,
    catalog_feed,
    decode_price_event,
    explain_status,
    feeds_from_metadata,
    parse_not_found_ids,
    parse_price_item,
    symbol_index,
)

__all__ = [
    "DEFAULT_FEEDS",
    "METADATA_PATH",
    "PROVISIONAL_EXPO",
    "STREAM_PATH",
    "DecodedEvent",
    "Endpoint",
    "HermesProtocolError",
    "HermesSource",
    "HermesStream",
    "MetadataPoller",
    "StreamState",
    "catalog_feed",
    "decode_price_event",
    "explain_status",
    "feeds_from_metadata",
    "parse_not_found_ids",
    "parse_price_item",
    "plan_shards",
    "symbol_index",
]
