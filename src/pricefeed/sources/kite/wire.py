"""The Kite Connect ticker's wire format, without I/O (reference/integrations.md section 3).

Market data is binary: a frame is ``int16`` packet count, then per packet an
``int16`` length and the packet, all big-endian. A packet's length says its
mode: 8 bytes ``ltp``, 44 ``quote`` and 184 ``full`` for a tradable instrument;
28 ``quote`` and 32 ``full`` for an index (whose OHLC order differs). A
1-byte frame is a heartbeat. Prices are integers in the instrument's smallest
unit: paise (divide by 100), or for currency derivatives (segment 3) 1e-7 and
for BSE currency (segment 6) 1e-4; so a price is a mantissa and an exponent,
never a float. Prices and the index's change are signed; quantities, volume,
open interest and times are unsigned (pykiteconnect reads all unsigned, which
turns a negative change into 4 billion). Requests are JSON text frames.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass

import orjson

from ...model import DepthLevel

LTP, QUOTE, FULL = "ltp", "quote", "full"
MODES = (LTP, QUOTE, FULL)

SEGMENT_EXPO = {3: -7, 6: -4}
"""Segment (``token & 0xff``) -> price exponent; every other segment is in paise (-2)."""
INDICES = 9
"""The segment of indices, which are not tradable."""

_HEADER = struct.Struct(">H")
_LTP = struct.Struct(">Ii")
_QUOTE = struct.Struct(">IiIiIIIiiii")
_FULL_HEAD = struct.Struct(">IiIiIIIiiiiIIIII")
_DEPTH = struct.Struct(">IiH2x")
_INDEX_QUOTE = struct.Struct(">Iiiiiii")
_INDEX_FULL = struct.Struct(">IiiiiiiI")
DEPTH_LEVELS = 5


class KiteProtocolError(ValueError):
    """A frame that does not follow the ticker's layout."""


@dataclass(frozen=True, slots=True)
class Ohlc:
    open: int
    high: int
    low: int
    close: int
    """The previous session's close (Kite's ``ohlc.close``)."""


@dataclass(frozen=True, slots=True)
class Tick:
    """One packet: an instrument's price in one mode (fields a mode does not carry are None)."""

    instrument_token: int
    mode: str
    tradable: bool
    last_price: int
    expo: int
    last_quantity: int | None = None
    average_price: int | None = None
    volume: int | None = None
    buy_quantity: int | None = None
    sell_quantity: int | None = None
    ohlc: Ohlc | None = None
    change: int | None = None
    """An index's change from the previous close, as Kite sends it (price units)."""
    last_trade_time: int | None = None
    """Unix seconds."""
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    exchange_timestamp: int | None = None
    """Unix seconds."""
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()

    @property
    def segment(self) -> int:
        return self.instrument_token & 0xFF


def expo_of(instrument_token: int) -> int:
    return SEGMENT_EXPO.get(instrument_token & 0xFF, -2)


def is_heartbeat(frame: bytes) -> bool:
    """A frame too short to hold a packet count: Kite's keep-alive, sent when there is nothing to stream."""
    return len(frame) < 2


def parse_frame(frame: bytes) -> list[Tick]:
    """Every packet of a binary frame, in order; ``KiteProtocolError`` if the frame is malformed."""
    if is_heartbeat(frame):
        return []
    (count,) = _HEADER.unpack_from(frame, 0)
    offset = 2
    ticks = []
    for index in range(count):
        if offset + 2 > len(frame):
            raise KiteProtocolError(f"frame of {len(frame)} bytes ends before packet {index + 1} of {count}")
        (length,) = _HEADER.unpack_from(frame, offset)
        offset += 2
        packet = frame[offset:offset + length]
        if len(packet) < length:
            raise KiteProtocolError(f"packet {index + 1} of {count} needs {length} bytes, the frame has "
                                    f"{len(packet)} left")
        ticks.append(parse_packet(packet))
        offset += length
    if offset != len(frame):
        raise KiteProtocolError(f"{len(frame) - offset} bytes after the {count} packets of the frame")
    return ticks


def parse_packet(packet: bytes) -> Tick:
    """One packet; its length says its mode and kind."""
    size = len(packet)
    if size == _LTP.size:
        token, price = _LTP.unpack(packet)
        return Tick(token, LTP, token & 0xFF != INDICES, price, expo_of(token))
    if size in (_INDEX_QUOTE.size, _INDEX_FULL.size):
        return _index(packet)
    if size in (_QUOTE.size, _FULL_HEAD.size + DEPTH_LEVELS * 2 * _DEPTH.size):
        return _tradable(packet)
    raise KiteProtocolError(f"unknown packet of {size} bytes (expected 8, 28, 32, 44 or 184)")


def _index(packet: bytes) -> Tick:
    full = len(packet) == _INDEX_FULL.size
    if full:
        token, price, high, low, open_, close, change, timestamp = _INDEX_FULL.unpack(packet)
    else:
        token, price, high, low, open_, close, change = _INDEX_QUOTE.unpack(packet)
        timestamp = None
    return Tick(token, FULL if full else QUOTE, False, price, expo_of(token), ohlc=Ohlc(open_, high, low, close),
                change=change, exchange_timestamp=timestamp)


def _tradable(packet: bytes) -> Tick:
    (token, price, quantity, average, volume, buy, sell, open_, high, low, close) = _QUOTE.unpack_from(packet)
    quote = Tick(token, QUOTE, token & 0xFF != INDICES, price, expo_of(token), last_quantity=quantity,
                 average_price=average, volume=volume, buy_quantity=buy, sell_quantity=sell,
                 ohlc=Ohlc(open_, high, low, close))
    if len(packet) == _QUOTE.size:
        return quote
    trade_time, oi, oi_high, oi_low, timestamp = _FULL_HEAD.unpack_from(packet)[11:]
    levels = [DepthLevel(price=p, quantity=q, orders=o) for q, p, o in
              (_DEPTH.unpack_from(packet, _FULL_HEAD.size + i * _DEPTH.size) for i in range(2 * DEPTH_LEVELS))]
    return dataclasses.replace(quote, mode=FULL, last_trade_time=trade_time, oi=oi, oi_day_high=oi_high,
                               oi_day_low=oi_low, exchange_timestamp=timestamp, bids=tuple(levels[:DEPTH_LEVELS]),
                               asks=tuple(levels[DEPTH_LEVELS:]))


# -- requests (text frames) ---------------------------------------------------------------------


def subscribe_message(tokens: list[int]) -> str:
    """``{"a": "subscribe", "v": [tokens]}``: tokens are numbers, not strings."""
    return orjson.dumps({"a": "subscribe", "v": tokens}).decode()


def unsubscribe_message(tokens: list[int]) -> str:
    return orjson.dumps({"a": "unsubscribe", "v": tokens}).decode()


def mode_message(mode: str, tokens: list[int]) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown Kite mode {mode!r}: expected ltp, quote or full")
    return orjson.dumps({"a": "mode", "v": [mode, tokens]}).decode()


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A text frame: an order update, an error, or a message (``{"type": ..., "data": ...}``)."""

    type: str
    data: object


def parse_text(text: str | bytes) -> TextMessage:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise KiteProtocolError(f"text frame is not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise KiteProtocolError("text frame is not an object with a \"type\"")
    return TextMessage(message["type"], message.get("data"))
