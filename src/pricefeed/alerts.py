"""Alert rules evaluated once per tick (a hub listener), each owned by a client-chosen ``owner``.

Rule kinds: ``price_above``, ``price_below``, ``price_crossing`` a ``level``;
``percent_move`` of ``percent`` within ``window_s`` seconds (``direction`` up,
down or any); ``volume_spike``: the forming bar's volume over ``multiple``
times the mean of the last ``period`` closed bars; ``breakout_high`` /
``breakout_low``: the price above the high / below the low of the last
``bars`` closed bars. Bars are the candle book's (``interval``).

An alert fires once per crossing: it is then disarmed and re-arms only after
the value moves back past a hysteresis band (``hysteresis``, in the rule's
units; 0.1 % of the level by default, a quarter of ``percent`` for moves; a
volume alert re-arms on the next bar), so a price hovering around a level
fires once. A firing is published on the derived topic
``alerts:<owner>:<feed id>`` with every alert of that owner on that feed, so
it reaches only that owner's connections subscribed to the symbol.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .analytics.candles import CandleBook, Interval
from .hub import Hub
from .model import FeedId, PriceUpdate, scaled
from .topics import Topic, derived_topic

ALERTS = "alerts"
GROUPS = {"price_above": "price_alerts", "price_below": "price_alerts", "price_crossing": "price_alerts",
          "percent_move": "price_alerts", "volume_spike": "volume_alerts", "breakout_high": "breakout_alerts",
          "breakout_low": "breakout_alerts"}
"""Each rule kind and the list of the seed's ``data`` message it is reported in."""
LIST_NAMES = ("price_alerts", "volume_alerts", "breakout_alerts")
DEFAULT_BAND = 0.001
"""The default hysteresis of level rules: 0.1 % of the level."""


def alerts_topic(owner: str, feed_id: FeedId) -> Topic:
    return derived_topic(ALERTS, owner, feed_id)


def _number(params: dict[str, Any], name: str, default: float | None = None, positive: bool = True) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"\"{name}\" must be a number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"\"{name}\" must be positive, got {value!r}")
    if value < 0:
        raise ValueError(f"\"{name}\" must not be negative, got {value!r}")
    return float(value)


def parse_rule(raw: object, intervals: tuple[Interval, ...]) -> dict[str, Any]:
    """A client's rule (``{"type": ..., ...}``) checked and completed with its defaults; ``ValueError``."""
    if not isinstance(raw, dict):
        raise ValueError("\"rule\" must be an object with a \"type\"")
    kind = raw.get("type")
    if kind not in GROUPS:
        raise ValueError(f"unknown alert type {kind!r}: known types are {', '.join(GROUPS)}")
    rule: dict[str, Any] = {"type": kind}
    if kind.startswith("price_"):
        rule["level"] = _number(raw, "level")
        rule["hysteresis"] = _number(raw, "hysteresis", rule["level"] * DEFAULT_BAND, positive=False)
    elif kind == "percent_move":
        rule["percent"] = _number(raw, "percent")
        rule["window_s"] = _number(raw, "window_s", 60.0)
        rule["direction"] = raw.get("direction", "any")
        if rule["direction"] not in ("up", "down", "any"):
            raise ValueError(f"\"direction\" must be up, down or any, got {rule['direction']!r}")
        rule["hysteresis"] = _number(raw, "hysteresis", rule["percent"] / 4, positive=False)
    else:
        if not intervals:
            raise ValueError("this service keeps no candles, so it has no bar alerts")
        labels = [i.label for i in intervals]
        label = raw.get("interval", "1m" if "1m" in labels else labels[0])
        if label not in labels:
            raise ValueError(f"unknown interval {label!r}: this service keeps candles of {', '.join(labels)}")
        rule["interval"] = label
        if kind == "volume_spike":
            rule["multiple"] = _number(raw, "multiple", 3.0)
            rule["period"] = int(_number(raw, "period", 20))
        else:
            rule["bars"] = int(_number(raw, "bars", 20))
            rule["hysteresis"] = _number(raw, "hysteresis", positive=False) if "hysteresis" in raw else None
    return rule


@dataclass(slots=True)
class Alert:
    id: str
    owner: str
    feed_id: FeedId
    rule: dict[str, Any]
    created_us: int
    armed: bool = True
    side: int = 0
    """``price_crossing``: the side of the level the price was last armed on (1 above, -1 below, 0 unknown)."""
    fired_bar: int | None = None
    """``volume_spike``: the start of the bar it last fired on."""
    triggers: int = 0
    last_value: float | None = None
    last_time_us: int | None = None
    prices: deque[tuple[int, float]] = field(default_factory=deque)
    """``percent_move``: the prices of the window (time, price); not persisted."""

    @property
    def kind(self) -> str:
        return str(self.rule["type"])

    def state(self) -> dict[str, Any]:
        """What is persisted besides the rule."""
        return {"armed": self.armed, "side": self.side, "fired_bar": self.fired_bar, "triggers": self.triggers,
                "last_value": self.last_value, "last_time_us": self.last_time_us, "created_us": self.created_us}

    def restore(self, state: dict[str, Any]) -> None:
        self.armed = bool(state.get("armed", True))
        self.side = int(state.get("side", 0))
        self.fired_bar = state.get("fired_bar")
        self.triggers = int(state.get("triggers", 0))
        self.last_value = state.get("last_value")
        self.last_time_us = state.get("last_time_us")
        self.created_us = int(state.get("created_us", self.created_us))


def _fire(alert: Alert, value: float, time_us: int) -> bool:
    alert.armed = False
    alert.triggers += 1
    alert.last_value = value
    alert.last_time_us = time_us
    return True


class Evaluator:
    """Evaluates one alert on one tick; True when it fired."""

    def __init__(self, candles: CandleBook | None) -> None:
        self.candles = candles
        self._by_kind: dict[str, Callable[[Alert, float, int], bool]] = {
            "price_above": self._above, "price_below": self._below, "price_crossing": self._crossing,
            "percent_move": self._move, "volume_spike": self._volume, "breakout_high": self._breakout,
            "breakout_low": self._breakout}

    def __call__(self, alert: Alert, price: float, time_us: int) -> bool:
        return self._by_kind[alert.kind](alert, price, time_us)

    @staticmethod
    def _above(alert: Alert, price: float, time_us: int) -> bool:
        level = alert.rule["level"]
        if alert.armed:
            return price >= level and _fire(alert, price, time_us)
        alert.armed = price < level - alert.rule["hysteresis"]
        return False

    @staticmethod
    def _below(alert: Alert, price: float, time_us: int) -> bool:
        level = alert.rule["level"]
        if alert.armed:
            return price <= level and _fire(alert, price, time_us)
        alert.armed = price > level + alert.rule["hysteresis"]
        return False

    @staticmethod
    def _crossing(alert: Alert, price: float, time_us: int) -> bool:
        level = alert.rule["level"]
        side = 1 if price >= level else -1
        if alert.side == 0:  # the first price says which side we are on; nothing has crossed yet
            alert.side, alert.armed = side, True
            return False
        if alert.armed:
            if side != alert.side:
                alert.side = side
                return _fire(alert, price, time_us)
            return False
        if abs(price - level) >= alert.rule["hysteresis"]:
            alert.armed, alert.side = True, side
        return False

    @staticmethod
    def _move(alert: Alert, price: float, time_us: int) -> bool:
        rule = alert.rule
        prices = alert.prices
        since = time_us - int(rule["window_s"] * 1_000_000)
        while prices and prices[0][0] < since:
            prices.popleft()
        prices.append((time_us, price))
        reference = prices[0][1]
        move = (price - reference) * 100 / reference if reference else 0.0
        signed = {"up": move, "down": -move, "any": abs(move)}[rule["direction"]]
        if alert.armed:
            if signed >= rule["percent"]:
                prices.clear()  # the next move counts from here
                prices.append((time_us, price))
                return _fire(alert, round(move, 4), time_us)
            return False
        alert.armed = signed < rule["percent"] - rule["hysteresis"]
        return False

    def _bars(self, alert: Alert) -> tuple[list[Any], Any]:
        if self.candles is None:
            return [], None
        interval = next((i for i in self.candles.intervals if i.label == alert.rule["interval"]), None)
        if interval is None:
            return [], None
        return self.candles.recent(alert.feed_id, interval)

    def _volume(self, alert: Alert, price: float, time_us: int) -> bool:
        finals, forming = self._bars(alert)
        period = alert.rule["period"]
        volumes = [bar.volume for bar in finals[-period:] if bar.volume is not None]
        if forming is None or forming.volume is None or len(volumes) < period:
            return False
        if not alert.armed and forming.start_us != alert.fired_bar:
            alert.armed = True  # once per bar: a new bar re-arms
        mean = sum(volumes) / period
        if alert.armed and mean > 0 and forming.volume > alert.rule["multiple"] * mean:
            alert.fired_bar = forming.start_us
            return _fire(alert, float(forming.volume), time_us)
        return False

    def _breakout(self, alert: Alert, price: float, time_us: int) -> bool:
        finals, _ = self._bars(alert)
        count = alert.rule["bars"]
        if len(finals) < count:
            return False
        window = finals[-count:]
        high = alert.kind == "breakout_high"
        level = max(scaled(b.high, b.expo) for b in window) if high else min(scaled(b.low, b.expo) for b in window)
        band = alert.rule["hysteresis"]
        band = level * DEFAULT_BAND if band is None else band
        beyond = price > level if high else price < level
        if alert.armed:
            return beyond and _fire(alert, price, time_us)
        alert.armed = price < level - band if high else price > level + band
        return False


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """What an owner's connections subscribed to a feed get: every alert of theirs on it (as :func:`alert_view`),
    ``triggered`` true on those that fired on this tick."""

    owner: str
    feed_id: FeedId
    time_us: int
    alerts: tuple[dict[str, Any], ...]


def alert_view(alert: Alert, triggered: bool = False) -> dict[str, Any]:
    """An alert as clients see it (the face adds its ``symbol``); ``triggered``: it fired on this tick."""
    return {"id": alert.id, "type": alert.kind, "rule": dict(alert.rule), "triggered": triggered,
            "armed": alert.armed, "triggers": alert.triggers, "value": alert.last_value,
            "triggered_at_us": alert.last_time_us}


class AlertBook:
    """Every owner's alerts, evaluated on each accepted tick of their feed (once per alert, whoever watches)."""

    def __init__(self, hub: Hub, candles: CandleBook | None = None) -> None:
        self.hub = hub
        self.candles = candles
        self.alerts: dict[str, Alert] = {}
        self._by_feed: dict[FeedId, list[Alert]] = {}
        self._evaluate = Evaluator(candles)
        self._counter = itertools.count(1)
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        self.evaluations = 0

    @property
    def intervals(self) -> tuple[Interval, ...]:
        return () if self.candles is None else tuple(self.candles.intervals)

    def create(self, owner: str, feed_id: FeedId, raw_rule: object, now_us: int) -> Alert:
        """A new alert (``ValueError`` for a bad owner or rule)."""
        check_owner(owner)
        rule = parse_rule(raw_rule, self.intervals)
        alert = Alert(f"a{next(self._counter)}-{secrets.token_hex(4)}", owner, feed_id, rule, now_us)
        self.add(alert)
        return alert

    def add(self, alert: Alert) -> None:
        self.alerts[alert.id] = alert
        self._by_feed.setdefault(alert.feed_id, []).append(alert)
        self.dirty.add(alert.id)

    def delete(self, owner: str, alert_id: str) -> Alert | None:
        alert = self.alerts.get(alert_id)
        if alert is None or alert.owner != owner:
            return None
        del self.alerts[alert_id]
        self._by_feed[alert.feed_id].remove(alert)
        self.dirty.discard(alert_id)
        self.deleted.add(alert_id)
        return alert

    def of(self, owner: str, feed_id: FeedId | None = None) -> list[Alert]:
        return [a for a in self.alerts.values() if a.owner == owner and (feed_id is None or a.feed_id == feed_id)]

    def event(self, owner: str, feed_id: FeedId, time_us: int, fired: frozenset[str] = frozenset()) -> AlertEvent:
        views = tuple(alert_view(a, a.id in fired) for a in self.of(owner, feed_id))
        return AlertEvent(owner, feed_id, time_us, views)

    def add_updates(self, updates: list[PriceUpdate]) -> None:
        """The hub listener: evaluate each alert of each updated feed, publish the owners' events that fired."""
        if not self._by_feed:
            return
        fired: dict[tuple[str, FeedId], set[str]] = {}
        times: dict[FeedId, int] = {}
        for update in updates:
            alerts = self._by_feed.get(update.feed_id)
            if not alerts:
                continue
            price = scaled(update.price, update.expo)
            for alert in alerts:
                self.evaluations += 1
                before = (alert.armed, alert.side, alert.triggers)
                if self._evaluate(alert, price, update.publish_time_us):
                    fired.setdefault((alert.owner, alert.feed_id), set()).add(alert.id)
                    times[update.feed_id] = update.publish_time_us
                if (alert.armed, alert.side, alert.triggers) != before:
                    self.dirty.add(alert.id)
        for (owner, feed_id), ids in fired.items():
            self.hub.publish_event(alerts_topic(owner, feed_id), self.event(owner, feed_id, times[feed_id],
                                                                           frozenset(ids)))

    def take_dirty(self) -> tuple[list[Alert], set[str]]:
        dirty = [self.alerts[i] for i in self.dirty if i in self.alerts]
        deleted = self.deleted
        self.dirty, self.deleted = set(), set()
        return dirty, deleted

    def status(self) -> dict[str, object]:
        return {"alerts": len(self.alerts), "owners": len({a.owner for a in self.alerts.values()}),
                "evaluations": self.evaluations}


def check_owner(owner: object) -> str:
    if not isinstance(owner, str) or not owner.strip() or ":" in owner or len(owner) > 128:
        raise ValueError(f"\"owner\" must be a non-empty string of at most 128 characters without ':', "
                         f"got {owner!r}")
    return owner
