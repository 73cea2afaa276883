"""Market hours as Pyth products carry them, read the way pyth-agent reads them.

Two attribute formats exist (pyth-agent ``market_schedule.rs`` and ``legacy_schedule.rs``):

* ``schedule``: ``America/New_York;O,O,O,O,O,C,C;1225/C,1231/0930-1300`` -- a time zone, seven days
  from Monday (``O`` open, ``C`` closed, or ``HHMM-HHMM`` ranges joined by ``&``, ``2400`` for the
  end of the day), then holiday overrides ``MMDD/<day>``.
* ``weekly_schedule`` (older): ``America/New_York,9:30-16:00,9:30-16:00,...,C,C`` -- a time zone and
  seven days separated by commas, ranges written ``HH:MM-HH:MM``.

``schedule`` wins when a product has both; with neither, the market is always open. Ranges include
both ends, as the agent's do (``0930-1600`` is open at 16:00:00, closed a moment later).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

END_OF_DAY = time.max
"""``2400``: the last instant of the day."""

Ranges = tuple[tuple[time, time], ...]
"""A day's open ranges; ``()`` is closed all day."""

OPEN: Ranges = ((time.min, END_OF_DAY),)
CLOSED: Ranges = ()

_HHMM = re.compile(r"(\d{2})(\d{2})")
_LEGACY_HHMM = re.compile(r"(\d{1,2}):(\d{2})")
_HOLIDAY = re.compile(r"(\d{2})(\d{2})/(.+)")


@dataclass(frozen=True, slots=True)
class MarketSchedule:
    """When a product's market is open: a time zone, a week from Monday and holiday overrides."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    week: tuple[Ranges, ...] = (OPEN,) * 7
    holidays: Mapping[tuple[int, int], Ranges] = field(default_factory=dict)
    """By (month, day)."""

    def is_open(self, when: datetime) -> bool:
        """Whether a quote may be published at ``when`` (an aware datetime)."""
        local = when.astimezone(self.timezone)
        day = self.holidays.get((local.month, local.day))
        if day is None:
            day = self.week[local.weekday()]
        now = local.time()
        return any(start <= now <= end for start, end in day)

    @property
    def always_open(self) -> bool:
        return all(day == OPEN for day in self.week) and all(day == OPEN for day in self.holidays.values())


ALWAYS_OPEN = MarketSchedule()


def parse_schedule(text: str) -> MarketSchedule:
    """A ``schedule`` attribute; ``ValueError`` saying what is wrong."""
    parts = text.split(";")
    if len(parts) not in (2, 3):
        raise ValueError(f"schedule {text!r}: expected 'TIMEZONE;MON,TUE,WED,THU,FRI,SAT,SUN;HOLIDAYS'")
    zone, days = _zone(parts[0]), parts[1].split(",")
    if len(days) != 7:
        raise ValueError(f"schedule {text!r}: expected 7 days from Monday, got {len(days)}")
    week = tuple(_day(day, text) for day in days)
    holidays: dict[tuple[int, int], Ranges] = {}
    for entry in filter(None, parts[2].split(",") if len(parts) == 3 else []):
        match = _HOLIDAY.fullmatch(entry)
        if match is None:
            raise ValueError(f"schedule {text!r}: holiday {entry!r} is not MMDD/O, MMDD/C or MMDD/HHMM-HHMM")
        month, day = int(match[1]), int(match[2])
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise ValueError(f"schedule {text!r}: holiday {entry!r} is not a month and day")
        holidays[(month, day)] = _day(match[3], text)
    return MarketSchedule(zone, week, holidays)


def parse_weekly_schedule(text: str) -> MarketSchedule:
    """A (legacy) ``weekly_schedule`` attribute; ``ValueError`` saying what is wrong."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 8:
        raise ValueError(f"weekly_schedule {text!r}: expected 'TIMEZONE,MON,TUE,WED,THU,FRI,SAT,SUN'")
    return MarketSchedule(_zone(parts[0]), tuple(_legacy_day(day, text) for day in parts[1:]))


def schedule_of(attributes: Mapping[str, str]) -> MarketSchedule:
    """A product's market hours from its attributes: ``schedule``, else ``weekly_schedule``, else always open."""
    if "schedule" in attributes:
        return parse_schedule(attributes["schedule"])
    if "weekly_schedule" in attributes:
        return parse_weekly_schedule(attributes["weekly_schedule"])
    return ALWAYS_OPEN


def publish_interval_of(attributes: Mapping[str, str]) -> float | None:
    """A product's ``publish_interval`` attribute in seconds (pyth-agent reads it as a float), if any."""
    text = attributes.get("publish_interval")
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"publish_interval {text!r}: expected seconds, e.g. \"2\" or \"0.5\"") from None
    if not 0 < seconds < 86_400:
        raise ValueError(f"publish_interval {text!r}: expected more than 0 and less than a day")
    return seconds


# -- parts ---------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as America/New_York)") from None


def _day(text: str, schedule: str) -> Ranges:
    if text == "O":
        return OPEN
    if text == "C":
        return CLOSED
    ranges = []
    for part in text.split("&"):
        start, sep, end = part.partition("-")
        first, last = _hhmm(start), _hhmm(end)
        if not sep or first is None or last is None:
            raise ValueError(f"schedule {schedule!r}: day {text!r} is not O, C or HHMM-HHMM ranges joined by &")
        ranges.append((first, last))
    return tuple(ranges)


def _hhmm(text: str) -> time | None:
    if text == "2400":
        return END_OF_DAY
    match = _HHMM.fullmatch(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return time(int(match[1]), int(match[2]))


def _legacy_day(text: str, schedule: str) -> Ranges:
    if text in ("O", "C"):
        return OPEN if text == "O" else CLOSED
    start, sep, end = text.partition("-")
    first = _legacy_hhmm(start)
    last = END_OF_DAY if "24:00" in end else _legacy_hhmm(end)
    if not sep or first is None or last is None:
        raise ValueError(f"weekly_schedule {schedule!r}: day {text!r} is not O, C or HH:MM-HH:MM")
    if not first < last:
        raise ValueError(f"weekly_schedule {schedule!r}: day {text!r} ends before it starts")
    return ((first, last),)


def _legacy_hhmm(text: str) -> time | None:
    match = _LEGACY_HHMM.fullmatch(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return time(int(match[1]), int(match[2]))
