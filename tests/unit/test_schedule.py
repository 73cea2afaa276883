"""Market hours in pyth-agent's two formats, checked against the agent's own test cases."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from pricefeed.schedule import (
    CLOSED,
    END_OF_DAY,
    OPEN,
    parse_schedule,
    parse_weekly_schedule,
    publish_interval_of,
    schedule_of,
)


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def test_parses_the_agents_example_schedule() -> None:
    schedule = parse_schedule("America/New_York;O,1234-1347,0930-2400,C,C,C,O;0412/O,0413/C,0414/1234-1347,"
                              "1230/0930-2400")
    assert schedule.timezone.key == "America/New_York"
    assert schedule.week == (OPEN, ((time(12, 34), time(13, 47)),), ((time(9, 30), END_OF_DAY),), CLOSED, CLOSED,
                             CLOSED, OPEN)
    assert schedule.holidays == {(4, 12): OPEN, (4, 13): CLOSED, (4, 14): ((time(12, 34), time(13, 47)),),
                                 (12, 30): ((time(9, 30), END_OF_DAY),)}
    assert parse_schedule("UTC;1234-1347&1400-1500,O,O,O,O,O,O;").week[0] == (
        (time(12, 34), time(13, 47)), (time(14, 0), time(15, 0)))


@pytest.mark.parametrize(("when", "is_open"), [  # the agent's test_market_schedule_can_publish_at
    ("2023-11-20 05:30", True),
    ("2023-04-22 08:59", False),
    ("2023-04-22 09:00", True),
    ("2023-04-22 12:00", True),
    ("2023-04-22 17:00", True),  # both ends of a range are open
    ("2023-04-22 17:01", False),
    ("2023-12-31 23:59", True),
    ("2024-04-14 12:00", True),
    ("2024-04-15 12:00", True),
    ("2023-12-25 12:00", False),
])
def test_is_open_as_the_agent_decides(when: str, is_open: bool) -> None:
    schedule = parse_schedule("UTC;O,O,O,O,O,O,O;0422/0900-1700,1109/0930-1730,1201/O,1225/C,1231/0930-2400")
    assert schedule.is_open(utc(when)) is is_open


def test_the_time_zone_decides_the_day_and_hour() -> None:
    nyse = parse_schedule("America/New_York;0930-1600,0930-1600,0930-1600,0930-1600,0930-1600,C,C;0704/C")
    assert nyse.is_open(utc("2025-01-06 14:30"))  # Monday 09:30 in New York (EST, UTC-5)
    assert not nyse.is_open(utc("2025-01-06 14:29"))
    assert nyse.is_open(utc("2025-07-07 13:30"))  # 09:30 EDT (UTC-4)
    assert not nyse.is_open(utc("2025-07-04 15:00"))  # Independence Day
    assert not nyse.is_open(utc("2025-01-11 15:00"))  # Saturday
    assert not nyse.is_open(utc("2025-01-07 03:00"))  # Monday night in New York, Tuesday in UTC


def test_parses_the_legacy_weekly_schedule() -> None:
    closed = parse_weekly_schedule("America/New_York,C,C,C,C,C,C,C")
    assert closed.week == (CLOSED,) * 7 and not closed.is_open(utc("2025-01-06 15:00"))
    hours = parse_weekly_schedule("Europe/London, 9:30-16:00,9:30-16:00,9:30-16:00,9:30-16:00,9:30-24:00,O,C")
    assert hours.week[0] == ((time(9, 30), time(16, 0)),) and hours.week[4] == ((time(9, 30), END_OF_DAY),)
    assert hours.is_open(utc("2025-01-06 16:00")) and not hours.is_open(utc("2025-01-06 16:01"))


def test_schedule_wins_over_weekly_schedule_and_none_is_always_open() -> None:
    both = schedule_of({"schedule": "UTC;C,C,C,C,C,C,C;", "weekly_schedule": "UTC,O,O,O,O,O,O,O"})
    assert not both.is_open(utc("2025-01-06 12:00"))
    assert schedule_of({"weekly_schedule": "UTC,C,O,O,O,O,O,O"}).week[0] == CLOSED
    assert schedule_of({}).always_open and schedule_of({}).is_open(utc("2025-01-06 12:00"))


@pytest.mark.parametrize(("text", "fragment"), [
    ("Invalid/Timezone;O,C,C,C,C,C,O;0412/O", "unknown time zone 'Invalid/Timezone'"),
    ("UTC;O,O,O,O,O,O;", "expected 7 days"),
    ("UTC;O,O,O,O,O,O,1234-5668;", "day '1234-5668'"),
    ("UTC;O,O,O,O,O,O,1234-56;", "day '1234-56'"),
    ("UTC;O,O,O,O,O,O,X;", "day 'X'"),
    ("UTC;O,O,O,O,O,O,O;0412-C", "holiday '0412-C'"),
    ("UTC;O,O,O,O,O,O,O;1332/C", "not a month and day"),
    ("UTC", "expected 'TIMEZONE;MON"),
])
def test_bad_schedules_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_schedule(text)
    assert fragment in str(error.value)


@pytest.mark.parametrize(("text", "fragment"), [
    ("America/New_York,C,C,C,C,C,C", "expected 'TIMEZONE,MON"),
    ("UTC,O,O,O,O,O,O,16:00-09:30", "ends before it starts"),
    ("UTC,O,O,O,O,O,O,0930-1600", "HH:MM-HH:MM"),
])
def test_bad_weekly_schedules_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_weekly_schedule(text)
    assert fragment in str(error.value)


def test_publish_interval_is_seconds() -> None:
    assert publish_interval_of({"publish_interval": "2"}) == 2.0
    assert publish_interval_of({"publish_interval": "0.4"}) == 0.4
    assert publish_interval_of({}) is None
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ValueError, match="publish_interval"):
            publish_interval_of({"publish_interval": bad})
