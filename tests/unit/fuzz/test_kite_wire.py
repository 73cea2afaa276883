"""The Kite ticker's binary frames (sources/kite/wire.py): any bytes parse or raise ``KiteProtocolError``, and
frames built here from the layout in reference/integrations.md section 3.3 parse to exactly the values encoded
(prices and the index change signed int32, quantities, volume, open interest and times unsigned)."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.model import DepthLevel
from pricefeed.sources.kite.wire import FULL, LTP, QUOTE, KiteProtocolError, Ohlc, Tick, parse_frame, parse_text

from .strategies import BYTES, JSON, dumps

I32 = st.integers(-(2**31), 2**31 - 1)
U32 = st.integers(0, 2**32 - 1)
U16 = st.integers(0, 2**16 - 1)
SEGMENTS = {3: -7, 6: -4}
"""Segment -> price exponent (cds, bcd); every other segment is in paise."""


def token(segment_and_rest: tuple[int, int]) -> int:
    segment, rest = segment_and_rest
    return (rest << 8) | segment


TOKENS = st.tuples(st.integers(0, 255), st.integers(0, 2**24 - 1)).map(token)
TRADABLE_TOKENS = TOKENS.filter(lambda t: t & 0xFF != 9)
INDEX_TOKENS = st.integers(0, 2**24 - 1).map(lambda rest: (rest << 8) | 9)


def expo(instrument_token: int) -> int:
    return SEGMENTS.get(instrument_token & 0xFF, -2)


def ltp(t: int, price: int) -> tuple[bytes, Tick]:
    return struct.pack(">Ii", t, price), Tick(t, LTP, t & 0xFF != 9, price, expo(t))


@st.composite
def tradable(draw: st.DrawFn) -> tuple[bytes, Tick]:
    t, price, quantity, average, volume, buy, sell = (draw(TRADABLE_TOKENS), draw(I32), draw(U32), draw(I32),
                                                      draw(U32), draw(U32), draw(U32))
    open_, high, low, close = (draw(I32) for _ in range(4))
    head = struct.pack(">Ii", t, price) + struct.pack(">I", quantity) + struct.pack(">i", average) + struct.pack(
        ">III", volume, buy, sell) + struct.pack(">iiii", open_, high, low, close)
    tick = Tick(t, QUOTE, True, price, expo(t), last_quantity=quantity, average_price=average, volume=volume,
                buy_quantity=buy, sell_quantity=sell, ohlc=Ohlc(open_, high, low, close))
    if not draw(st.booleans()):
        return head, tick
    trade_time, oi, oi_high, oi_low, stamp = (draw(U32) for _ in range(5))
    levels = [DepthLevel(quantity=draw(U32), price=draw(I32), orders=draw(U16)) for _ in range(10)]
    depth = b"".join(struct.pack(">IiH", d.quantity, d.price, d.orders) + b"\0\0" for d in levels)
    packet = head + struct.pack(">IIIII", trade_time, oi, oi_high, oi_low, stamp) + depth
    assert len(packet) == 184
    return packet, Tick(t, FULL, True, price, expo(t), last_quantity=quantity, average_price=average, volume=volume,
                        buy_quantity=buy, sell_quantity=sell, ohlc=Ohlc(open_, high, low, close),
                        last_trade_time=trade_time, oi=oi, oi_day_high=oi_high, oi_day_low=oi_low,
                        exchange_timestamp=stamp, bids=tuple(levels[:5]), asks=tuple(levels[5:]))


@st.composite
def index(draw: st.DrawFn) -> tuple[bytes, Tick]:
    t, price, high, low, open_, close, change = draw(INDEX_TOKENS), *(draw(I32) for _ in range(6))
    packet = struct.pack(">Iiiiiii", t, price, high, low, open_, close, change)
    stamp = draw(st.none() | U32)
    if stamp is not None:
        packet += struct.pack(">I", stamp)
    return packet, Tick(t, QUOTE if stamp is None else FULL, False, price, -2, ohlc=Ohlc(open_, high, low, close),
                        change=change, exchange_timestamp=stamp)


PACKETS = st.one_of(st.tuples(TOKENS, I32).map(lambda a: ltp(*a)), tradable(), index())


def frame_of(packets: list[bytes]) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(p)) + p for p in packets)


@given(st.lists(PACKETS, max_size=5))
def test_a_frame_parses_to_exactly_the_values_encoded(packets: list[tuple[bytes, Tick]]) -> None:
    assert parse_frame(frame_of([p for p, _ in packets])) == [tick for _, tick in packets]


@given(BYTES | st.lists(PACKETS, min_size=1, max_size=3).flatmap(
    lambda packets: st.tuples(st.just(frame_of([p for p, _ in packets])), st.integers(0, 200), BYTES).map(
        lambda f: f[0][:f[1]] + f[2])))
@example(b"\x00\x01\x00\x00")  # a packet of no bytes
@example(b"\x00\x01\x00\x08\x00")  # cut short
def test_any_bytes_parse_or_raise_kites_protocol_error(data: bytes) -> None:
    try:
        ticks = parse_frame(data)
    except KiteProtocolError as exc:
        assert str(exc)
    else:
        assert len(ticks) == (0 if len(data) < 2 else int.from_bytes(data[:2], "big"))


@given(BYTES | JSON.map(dumps) | st.fixed_dictionaries({"type": JSON | st.text()}, optional={"data": JSON}).map(dumps))
def test_text_frames_parse_or_raise_kites_protocol_error(data: Any) -> None:
    try:
        message = parse_text(data)
    except KiteProtocolError as exc:
        assert str(exc)
    else:
        assert isinstance(message.type, str)
