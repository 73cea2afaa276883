"""One symbol a stream connection subscribes to: what it asked for and the hub topics it holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...analytics.candles import Interval
from ...analytics.indicators import Periods
from ...contracts import Subscriber
from ...model import FeedId
from ...topics import Topic


@dataclass(slots=True)
class Subscription:
    symbol: str
    feed_id: FeedId
    data_types: list[str] | None
    analysis: tuple[Interval, Periods] | None = None
    since_seq: int | None = None
    """The last seq the client saw of this symbol's prices (/ws/stream): it gets what came after first."""
    topics: list[tuple[Topic, Subscriber]] = field(default_factory=list)
