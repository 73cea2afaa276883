"""The simulated NSE equities: the session calendar, trades with quantities and the day's volume, restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pricefeed.model import PriceUpdate, has_confidence
from pricefeed.sources.equities import NSE_EQUITIES, SimulatedEquities
from pricefeed.sources.exchange import last_close

IST = ZoneInfo("Asia/Kolkata")


def ist(text: str) -> datetime:
    """An IST wall-clock time (2026-12-07 is a Monday)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)


def us(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def market(hours: bool = True) -> SimulatedEquities:
    return SimulatedEquities("sim", interval_s=0.4, market_hours=hours, seed=1)


def test_the_feeds_are_nse_stocks_in_rupees_without_confidence() -> None:
    feeds = market().feeds
    assert [f.attributes["trading_symbol"] for f in feeds] == [e.symbol for e in NSE_EQUITIES]
    reliance = feeds[0]
    assert (reliance.symbol, reliance.expo, reliance.display_symbol) == ("Equity.NSE.RELIANCE/INR", -2, "RELIANCE/INR")
    assert reliance.attributes["schedule"] == "Asia/Kolkata;0915-1530,0915-1530,0915-1530,0915-1530,0915-1530,C,C;"
    assert reliance.simulated and reliance.attributes["simulated"] == "true" and not has_confidence(reliance)


def test_the_session_calendar() -> None:
    nse = market()
    assert not nse.is_open(ist("2026-12-07 09:14:59")) and nse.is_open(ist("2026-12-07 09:15:00"))
    assert nse.is_open(ist("2026-12-07 15:30:00")) and not nse.is_open(ist("2026-12-07 15:30:01"))
    assert not nse.is_open(ist("2026-12-05 11:00:00"))  # Saturday
    assert not nse.is_open(ist("2026-12-06 11:00:00"))  # Sunday
    assert market(hours=False).is_open(ist("2026-12-06 03:00:00"))
    assert last_close(nse.schedule, ist("2026-12-07 08:00:00")) == ist("2026-12-04 15:30:00")  # Friday's close
    assert last_close(nse.schedule, ist("2026-12-07 20:00:00")) == ist("2026-12-07 15:30:00")


def test_no_ticks_outside_the_session_and_trades_inside_it() -> None:
    nse = market()
    assert nse.tick(ist("2026-12-07 16:00:00"), us(ist("2026-12-07 16:00:00"))) == []
    first = nse.tick(ist("2026-12-07 10:00:00"), us(ist("2026-12-07 10:00:00")))
    second = nse.tick(ist("2026-12-07 10:00:01"), us(ist("2026-12-07 10:00:01")))
    assert len(first) == len(second) == len(NSE_EQUITIES)
    for a, b in zip(first, second, strict=True):
        assert a.price % 5 == 0 and b.price % 5 == 0 and a.conf == 0 and a.ema_conf == 0 and a.expo == -2
        assert a.quantity is not None and b.quantity is not None and a.quantity >= 1
        assert (a.volume, b.volume) == (a.quantity, a.quantity + b.quantity)
    next_day = nse.tick(ist("2026-12-08 09:15:00"), us(ist("2026-12-08 09:15:00")))
    assert all(u.volume == u.quantity for u in next_day)  # each session's volume starts again


def test_a_restart_goes_on_with_the_days_volume_and_a_new_stock_gets_its_last_close() -> None:
    nse = market()
    reliance = nse.feeds[0].id
    stored = PriceUpdate(reliance, 142035, 0, -2, us(ist("2026-12-07 11:00:00")), 142035, 0, volume=5_000_000,
                         quantity=20, source="sim")
    first = nse.resume({reliance: stored}, ist("2026-12-07 11:05:00"))
    assert first == []  # open: the others start with their first trade
    (tick,) = [u for u in nse.tick(ist("2026-12-07 11:05:00"), us(ist("2026-12-07 11:05:00"))) if u.feed_id == reliance]
    assert tick.volume == 5_000_000 + tick.quantity  # type: ignore[operator]
    assert abs(tick.price - 142035) < 1000

    closed = market()
    firsts = closed.resume({reliance: stored}, ist("2026-12-07 20:00:00"))
    assert [u.feed_id for u in firsts] == [f.id for f in closed.feeds[1:]]
    assert {u.publish_time_us for u in firsts} == {us(ist("2026-12-07 15:30:00"))}
    assert all(u.volume is None and u.quantity is None for u in firsts)
    assert closed.tick(datetime(2026, 12, 7, 14, 30, tzinfo=UTC), 0) == []  # 20:00 IST: closed
