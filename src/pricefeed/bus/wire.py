"""How passes travel between processes: MessagePack (msgspec), each update a positional row.

A row is the update's fields in declaration order, so no field name is repeated
per update (about half the size of a keyed map) and decoding is one typed
msgspec call plus one constructor call per update.
"""

from __future__ import annotations

import dataclasses
import operator

import msgspec

from ..model import Feed, FeedId, MarketDetails, MarketStats, PriceUpdate, Quote, Status

_FIELDS = tuple(f.name for f in dataclasses.fields(PriceUpdate))
_row_of = operator.attrgetter(*_FIELDS)

_Row = tuple[str, int, int, int, int, int, int, Status, int | None, int | None, str, int, int | None, int | None,
             Quote | None, MarketDetails | None, MarketStats | None]
"""PriceUpdate's fields in order (a test checks the two agree)."""

_encoder = msgspec.msgpack.Encoder()
_rows = msgspec.msgpack.Decoder(list[_Row])
_feeds = msgspec.msgpack.Decoder(list[Feed])
_ids = msgspec.msgpack.Decoder(list[str])


def encode_updates(updates: list[PriceUpdate]) -> bytes:
    return _encoder.encode([_row_of(u) for u in updates])


def decode_updates(data: bytes) -> list[PriceUpdate]:
    return [PriceUpdate(*row) for row in _rows.decode(data)]


def encode_feeds(feeds: list[Feed]) -> bytes:
    return _encoder.encode(feeds)


def decode_feeds(data: bytes) -> list[Feed]:
    return _feeds.decode(data)


def encode_ids(ids: list[FeedId]) -> bytes:
    return _encoder.encode(ids)


def decode_ids(data: bytes) -> list[FeedId]:
    return _ids.decode(data)


_pass = msgspec.msgpack.Decoder(tuple[list[_Row], list[str]])


def encode_pass(accepted: list[PriceUpdate], seen_only: list[FeedId]) -> bytes:
    """One ingest pass: its accepted updates and the feeds it heard from that only repeated themselves."""
    return _encoder.encode(([_row_of(u) for u in accepted], seen_only))


def decode_pass(data: bytes) -> tuple[list[PriceUpdate], list[FeedId]]:
    rows, seen_only = _pass.decode(data)
    return [PriceUpdate(*row) for row in rows], seen_only
