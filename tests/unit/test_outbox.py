from __future__ import annotations

from pricefeed.transport.outbox import Outbox


def test_newest_frame_per_key_wins_and_keeps_its_place() -> None:
    box = Outbox()
    box.put("btc", b"b1")
    box.put("eth", b"e1")
    box.put("btc", b"b2-longer")
    assert box.pending_bytes == len(b"e1") + len(b"b2-longer")
    assert box.take() == b"b2-longere1"
    assert box.pending_bytes == 0 and len(box) == 0


def test_control_frames_are_never_conflated() -> None:
    box = Outbox()
    box.put_control(b"a")
    box.put_control(b"a")
    box.put("btc", b"p")
    box.put_control(b"z")
    assert box.take() == b"aapz"


def test_discard_drops_a_pending_price() -> None:
    box = Outbox()
    box.put("btc", b"123")
    box.put("eth", b"45")
    box.discard("btc")
    box.discard("missing")
    assert box.pending_bytes == 2
    assert box.take() == b"45"
