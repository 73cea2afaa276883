"""The Kite ticker's binary frames, byte by byte (layouts from reference/integrations.md section 3)."""

from __future__ import annotations

import pytest

from pricefeed.model import DepthLevel
from pricefeed.sources.kite.wire import (
    FULL,
    LTP,
    QUOTE,
    KiteProtocolError,
    Ohlc,
    Tick,
    is_heartbeat,
    mode_message,
    parse_frame,
    parse_packet,
    parse_text,
    subscribe_message,
    unsubscribe_message,
)


def hexbytes(text: str) -> bytes:
    """Hex digits, with spaces and ``#`` comments to the end of a line."""
    return bytes.fromhex("".join(line.split("#")[0].replace(" ", "") for line in text.splitlines()))


# INFY on NSE: token 408065 = 0x00063a01, segment 1 (nse), prices in paise.
LTP_PACKET = hexbytes("00063a01 00024a09")  # token, last price 150025 -> 1500.25
QUOTE_PACKET = hexbytes("""
    00063a01 00024a09   # token 408065, last price 150025
    0000000a            # last traded quantity 10
    000249dc            # average traded price 149980
    0012d687            # volume 1234567
    00001388 00001770   # total buy 5000, total sell 6000
    000247fc 00024be4   # open 149500, high 150500
    00024608 00024928   # low 149000, close 149800
""")
# last trade time 1764751500, OI 0, OI day high 0, OI day low 0, exchange timestamp 1764751502
FULL_TAIL = hexbytes("692ff88c 00000000 00000000 00000000 692ff88e")
BID_0 = hexbytes("00000078 00024a04 0003 0000")  # quantity 120, price 150020, 3 orders, 2 bytes padding
EMPTY_LEVEL = hexbytes("00000000 00000000 0000 0000")
ASK_0 = hexbytes("00000064 00024a0e 0002 0000")  # quantity 100, price 150030, 2 orders
FULL_PACKET = QUOTE_PACKET + FULL_TAIL + BID_0 + EMPTY_LEVEL * 4 + ASK_0 + EMPTY_LEVEL * 4
# NIFTY 50: token 256265 = 0x0003e909, segment 9 (indices); OHLC order is high, low, open, close.
INDEX_QUOTE_PACKET = hexbytes("0003e909 00256282 00258960 00253b40 00254ec8 002562aa ffffffd8")
INDEX_FULL_PACKET = INDEX_QUOTE_PACKET + hexbytes("692ff88e")


def frame(*packets: bytes) -> bytes:
    return len(packets).to_bytes(2, "big") + b"".join(len(p).to_bytes(2, "big") + p for p in packets)


def test_an_ltp_packet() -> None:
    assert frame(LTP_PACKET) == hexbytes("0001 0008 00063a01 00024a09")
    assert parse_frame(frame(LTP_PACKET)) == [Tick(408065, LTP, True, 150025, -2)]


def test_a_quote_packet_field_by_field() -> None:
    assert len(QUOTE_PACKET) == 44
    (tick,) = parse_frame(frame(QUOTE_PACKET))
    assert tick == Tick(408065, QUOTE, True, 150025, -2, last_quantity=10, average_price=149980, volume=1234567,
                        buy_quantity=5000, sell_quantity=6000, ohlc=Ohlc(149500, 150500, 149000, 149800))


def test_a_full_packet_with_depth() -> None:
    assert len(FULL_PACKET) == 184
    tick = parse_packet(FULL_PACKET)
    assert tick.mode == FULL and tick.tradable and tick.last_price == 150025
    assert (tick.last_trade_time, tick.oi, tick.oi_day_high, tick.oi_day_low, tick.exchange_timestamp) == (
        1764751500, 0, 0, 0, 1764751502)
    assert tick.ohlc == Ohlc(149500, 150500, 149000, 149800) and tick.volume == 1234567
    assert tick.bids == (DepthLevel(150020, 120, 3),) + (DepthLevel(0, 0, 0),) * 4
    assert tick.asks == (DepthLevel(150030, 100, 2),) + (DepthLevel(0, 0, 0),) * 4


def test_index_packets_have_their_own_ohlc_order_and_a_signed_change() -> None:
    quote = parse_packet(INDEX_QUOTE_PACKET)
    assert quote == Tick(256265, QUOTE, False, 2450050, -2, ohlc=Ohlc(open=2445000, high=2460000, low=2440000,
                                                                      close=2450090), change=-40)
    full = parse_packet(INDEX_FULL_PACKET)
    assert full.mode == FULL and not full.tradable and full.exchange_timestamp == 1764751502 and full.change == -40


def test_an_index_ltp_is_not_tradable() -> None:
    assert parse_packet(hexbytes("0003e909 00256282")) == Tick(256265, LTP, False, 2450050, -2)


def test_signed_prices() -> None:
    # A spread contract can trade below zero: ffffff9c is -100 paise.
    assert parse_packet(hexbytes("00063a01 ffffff9c")).last_price == -100


def test_currency_divisors_by_segment() -> None:
    # Segment 3 (cds): 1e7, so 832512500 is 83.2512500 rupees; segment 6 (bcd): 1e4.
    assert parse_packet(hexbytes("00064c03 319f21f4")) == Tick(412675, LTP, True, 832512500, -7)
    assert parse_packet(hexbytes("00064c06 000cb20e")).expo == -4
    assert parse_packet(hexbytes("00064c07 000cb20e")).expo == -2  # mcx: paise


def test_a_multi_packet_frame_keeps_order() -> None:
    ticks = parse_frame(frame(LTP_PACKET, QUOTE_PACKET, INDEX_FULL_PACKET, FULL_PACKET))
    assert [(t.instrument_token, t.mode) for t in ticks] == [(408065, LTP), (408065, QUOTE), (256265, FULL),
                                                              (408065, FULL)]


def test_heartbeats_are_ignored() -> None:
    assert is_heartbeat(b"\x00") and parse_frame(b"\x00") == [] and parse_frame(b"") == []
    assert parse_frame(hexbytes("0000")) == []  # a frame of no packets


@pytest.mark.parametrize(("data", "problem"), [
    (hexbytes("0002 0008 00063a01 00024a09"), "ends before packet 2 of 2"),
    (hexbytes("0001 002c 00063a01 00024a09"), "needs 44 bytes"),
    (hexbytes("0001 0006 00063a01 0002"), "unknown packet of 6 bytes"),
    (hexbytes("0001 0008 00063a01 00024a09 ff"), "1 bytes after the 1 packets"),
])
def test_malformed_frames_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(KiteProtocolError, match=problem):
        parse_frame(data)


def test_requests_are_json_text_with_numeric_tokens() -> None:
    assert subscribe_message([408065, 884737]) == '{"a":"subscribe","v":[408065,884737]}'
    assert unsubscribe_message([408065]) == '{"a":"unsubscribe","v":[408065]}'
    assert mode_message("full", [408065]) == '{"a":"mode","v":["full",[408065]]}'
    with pytest.raises(ValueError, match="unknown Kite mode"):
        mode_message("fast", [1])


def test_text_messages() -> None:
    message = parse_text('{"type": "order", "data": {"order_id": "151220000000000"}}')
    assert (message.type, message.data) == ("order", {"order_id": "151220000000000"})
    assert parse_text('{"type": "error", "data": "Invalid access token"}').data == "Invalid access token"
    with pytest.raises(KiteProtocolError):
        parse_text("[1]")
    with pytest.raises(KiteProtocolError):
        parse_text("not json")
