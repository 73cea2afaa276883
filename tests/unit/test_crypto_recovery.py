"""RecoveryLog: offsets on broadcasts, sessions held after a failed link, exactly the missed packets of their rooms."""

from __future__ import annotations

from pricefeed.faces.crypto.recovery import RecoveryLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_offsets_are_the_last_argument_and_a_kept_session_gets_exactly_its_rooms_missed_packets() -> None:
    log = RecoveryLog(max_disconnection_s=120, clock=Clock())
    assert log.record("crypto-prices", '2["crypto-prices",[1]') == '2["crypto-prices",[1],"1"]'
    log.keep("p1", ["crypto-prices"])
    assert log.awaited_rooms() == {"crypto-prices"}
    log.record("crypto-prices", '2["crypto-prices",[2]')
    log.record("crypto-prices:BTC", '2["crypto-prices",[3]')
    log.record("crypto-prices", '2["crypto-prices",[4]')
    assert log.restore("p1", "1") == (("crypto-prices",), ['2["crypto-prices",[2],"2"]', '2["crypto-prices",[4],"4"]'])
    assert log.restore("p1", "1") is None, "a session is recovered once"
    assert log.recovered == 1


def test_what_cannot_be_recovered_is_not() -> None:
    clock = Clock()
    log = RecoveryLog(max_disconnection_s=10, clock=clock)
    log.record("r", "x")
    log.keep("p", ["r"])
    assert log.restore("p", "7") is None  # an offset this log never gave
    log.keep("p", ["r"])
    assert log.restore("other", "1") is None and log.restore("p", 1) is None and log.restore(None, "1") is None
    log.keep("p", ["r"])
    clock.now += 11
    log.record("r", "y")  # the first packet is now older than the log keeps
    assert log.restore("p", "1") is None, "expired"
    log.keep("q", ["r"])
    clock.now += 11
    log.record("r", "z")
    assert log.restore("q", "1") is None, "its offset is no longer held"
    log.keep("s", ["r"])
    assert log.restore("s", "3") == (("r",), [])
