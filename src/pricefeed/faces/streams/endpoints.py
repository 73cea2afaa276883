"""The seed's four WebSocket endpoints and the data types a /ws/stream client may choose.

All four speak the same protocol (welcome, subscribe/unsubscribe, heartbeat,
ping, errors). /ws/stream carries market data, /ws/analysis each bar's
indicators and patterns, /ws/alerts its owner's alerts as they fire,
/ws/portfolio its owner's positions marked to market on each tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...analytics.candles import Interval
from ..json_types import describe, json_type


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    path: str
    carries_data: bool
    """Whether subscriptions bring ``data`` messages."""

    @property
    def face(self) -> str:
        """The metrics label of its connections."""
        return f"streams_{self.name}"


STREAM = Endpoint("stream", "/ws/stream", carries_data=True)
ANALYSIS = Endpoint("analysis", "/ws/analysis", carries_data=True)
ALERTS = Endpoint("alerts", "/ws/alerts", carries_data=True)
PORTFOLIO = Endpoint("portfolio", "/ws/portfolio", carries_data=True)
ENDPOINTS = (STREAM, ANALYSIS, ALERTS, PORTFOLIO)

TICK = "tick"
MARKET = "market"
CANDLE_PREFIX = "candle_"
_ALIASES = {"tick_data": TICK, "ticks": TICK, "market_data": MARKET}
_ALL_CANDLES = ("candle", "candles", "candle_data")
"""Names the seed's ``candle_data`` may be asked by: every configured interval."""


def data_type_names(intervals: Iterable[Interval]) -> list[str]:
    return [TICK, *(CANDLE_PREFIX + i.label for i in intervals), MARKET]


def parse_data_types(raw: object, intervals: tuple[Interval, ...]) -> list[str]:
    """A client's ``data_types`` as canonical names, in its order, without repeats; ``ValueError`` saying what
    is wrong."""
    valid = data_type_names(intervals)
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"\"data_types\" must be a non-empty array of names, got {json_type(raw)}; "
                         f"known types are {', '.join(valid)}")
    names: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise ValueError(f"unknown data type {describe(item)}: known types are {', '.join(valid)}")
        name = item.strip().lower()
        name = _ALIASES.get(name, name)
        if name in _ALL_CANDLES:
            names += [CANDLE_PREFIX + i.label for i in intervals]
        elif name in valid:
            names.append(name)
        else:
            raise ValueError(f"unknown data type {describe(item)}: known types are {', '.join(valid)}")
    return list(dict.fromkeys(names))
