"""Strategies the fuzz tests share: arbitrary JSON and bytes, and the protocols' well-formed pieces."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
"""Any JSON value (no NaN: it is not JSON)."""

BYTES = st.binary(max_size=64)
"""Any bytes, most of them not JSON and some not UTF-8."""

TEXT = st.text(max_size=64)


def frames(messages: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """What a client may put in a frame: raw bytes, any text, any JSON, or ``messages`` (dicts) as JSON."""
    return st.one_of(BYTES, TEXT.map(str.encode), JSON.map(dumps), messages.map(dumps))


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


HEX_ID = st.binary(min_size=32, max_size=32).map(bytes.hex)
"""A feed id as pricefeed writes it: 64 lowercase hex digits."""


def spelled(feed_id: str) -> st.SearchStrategy[str]:
    """A feed id as clients may write it: with or without ``0x`` or ``0X``, in either case."""
    return st.tuples(st.sampled_from(["", "0x", "0X"]), st.booleans()).map(
        lambda p: p[0] + (feed_id.upper() if p[1] else feed_id))


def ids_as_written(known: list[str]) -> st.SearchStrategy[str]:
    """A known id as a client writes it, a well-formed unknown id, or something that is not an id at all."""
    return st.one_of(st.sampled_from(known).flatmap(spelled), HEX_ID.flatmap(spelled), st.text(max_size=70))


@contextlib.contextmanager
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """The error records pricefeed logs meanwhile (a session logs the exception it caught as an error)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("pricefeed")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
