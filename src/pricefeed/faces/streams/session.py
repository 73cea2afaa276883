"""The seed-004 protocol for one connection, without I/O: the same on every endpoint.

``subscribe``/``unsubscribe`` a ``symbol`` (answered with ``subscription``),
``heartbeat`` (answered with its ``ack``), ``ping`` (``pong``); anything else
gets an ``error`` that says what was expected, and the connection goes on. On
/ws/stream a subscription brings the latest price at once, then each new one;
a client that names ``data_types`` gets those instead (ticks, candles with
the recent bars first, market data). A /ws/stream subscription may give
``since_seq``, the last seq it saw (``seq`` is in each ``tick``, and in each
``data`` message of such a subscription): it is answered with ``recovered``
and, instead of the latest price, every update after that seq in order (or
the latest, not recovered, when the log no longer holds them), then live. On /ws/analysis a subscription brings
the indicators of the last closed bar and of the forming one at once (warmed
up from the kept candles), then each change; a client may name the candle
``interval`` and the indicators' ``periods``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ...alerts import AlertBook
from ...analytics import Analytics
from ...analytics.candles import Interval, final_topic, forming_topic
from ...analytics.indicators import Periods
from ...analytics.market import market_topic
from ...contracts import Codec, Peer, Subscriber
from ...divergence import DivergenceWatch
from ...hub import Hub
from ...model import FeedId, PriceUpdate
from ...portfolio import PortfolioBook
from ...resume import RecentUpdates
from ...topics import Topic
from ..json_types import describe, json_type
from .alert_channel import AlertChannel
from .codecs import StreamCodecs
from .endpoints import ALERTS, ANALYSIS, CANDLE_PREFIX, MARKET, PORTFOLIO, STREAM, TICK, Endpoint, parse_data_types
from .messages import INVALID_JSON, connection, error, heartbeat_ack, pong
from .messages import subscription as subscription_reply
from .owned import OwnedChannel
from .portfolio_channel import PortfolioChannel
from .subscription import Subscription
from .symbols import SymbolIndex

SHOWN_SYMBOLS = 40
"""How many known symbols an unknown-symbol error lists."""
DEFAULT_ANALYSIS_INTERVAL = "1m"
"""The candles /ws/analysis analyses when a subscription names none (the shortest interval if 1m is not kept)."""


class FinalLane:
    """Delivers closed candles into a connection without conflation: each final bar is sent once, even to a
    client that is behind, and one already sent in the subscribe snapshot is not sent again."""

    __slots__ = ("_count", "_lane", "_sent", "codec")

    def __init__(self, lane: Subscriber) -> None:
        self._lane = lane
        self.codec = lane.codec
        self._count = 0
        self._sent: dict[Topic, bytes] = {}
        """Per topic, the last final of the snapshot (the hub may still be about to deliver it)."""

    def sent_in_snapshot(self, topic: Topic, payload: bytes) -> None:
        self._sent[topic] = payload

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        unique: dict[Topic, bytes] = {}
        for topic, frame in frames.items():
            sent = self._sent.pop(topic, None)
            if sent is not None and frame.endswith(sent):
                continue
            self._count += 1
            unique[f"{topic}#{self._count}"] = frame  # a key of its own: never replaced in the outbox
        if unique:
            self._lane.deliver(unique)


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What every session of the service shares."""

    hub: Hub
    symbols: SymbolIndex
    codecs: StreamCodecs
    analytics: Analytics | None
    max_subscriptions: int = 1000
    alerts: AlertBook | None = None
    portfolio: PortfolioBook | None = None
    divergence: DivergenceWatch | None = None
    recent: RecentUpdates | None = None
    """Every recent update by seq: what a ``since_seq`` subscription missed."""

    @property
    def intervals(self) -> tuple[Interval, ...]:
        return () if self.analytics is None else self.analytics.candles.intervals


class StreamSession:
    def __init__(self, endpoint: Endpoint, context: StreamContext, peer: Peer) -> None:
        self.endpoint = endpoint
        self.context = context
        self.hub = context.hub
        self.peer = peer
        self.subscriptions: dict[FeedId, Subscription] = {}
        self._lanes: dict[Codec, Subscriber] = {}
        self._finals: dict[Codec, FinalLane] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "subscribe": self._subscribe, "unsubscribe": self._unsubscribe,
            "heartbeat": lambda _: self.peer.send(heartbeat_ack()),
            "ping": lambda _: self.peer.send(pong()),
        }
        self.owned: OwnedChannel | None = None
        if endpoint is ALERTS and context.alerts is not None:
            self.owned = AlertChannel(self, context.alerts, context.codecs, context.divergence)
        elif endpoint is PORTFOLIO and context.portfolio is not None:
            self.owned = PortfolioChannel(self, context.portfolio, context.codecs.portfolio)
        if self.owned is not None:
            self._handlers.update(self.owned.handlers())

    def opened(self) -> None:
        self.peer.send(connection())

    def closed(self) -> None:
        for feed_id in list(self.subscriptions):
            self._drop(feed_id)

    def receive_binary(self, data: bytes) -> None:
        self.error("binary frames are not supported: send JSON messages as text frames")

    def receive_text(self, text: str | bytes) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error(INVALID_JSON)
            return
        expected = ", ".join(self._handlers)
        if not isinstance(message, dict):
            self.error(f"message must be a JSON object with a \"type\", got {json_type(message)}")
            return
        kind = message.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            if kind is None:
                self.error(f"missing \"type\": expected one of {expected}")
            else:
                self.error(f"unknown message type {describe(kind)}: expected one of {expected}")
            return
        handler(message)

    # -- commands ---------------------------------------------------------------------

    def _subscribe(self, message: dict[str, Any]) -> None:
        if self.owned is not None and not self.owned.claim(message):
            return
        feed_id, symbol = self.resolve(message, "subscribe")
        if feed_id is None:
            return
        data_types = None
        analysis = None
        if self.endpoint is ANALYSIS:
            try:
                analysis = self._analysis_choice(message)
            except ValueError as exc:
                self.error(str(exc))
                return
        if "data_types" in message:
            if self.endpoint is not STREAM:
                self.error(f"{self.endpoint.path} has no data types to choose: \"data_types\" is for /ws/stream")
                return
            try:
                data_types = parse_data_types(message["data_types"], self.context.intervals)
            except ValueError as exc:
                self.error(str(exc))
                return
        since_seq = message.get("since_seq")
        if since_seq is not None:
            if self.endpoint is not STREAM:
                self.error(f"{self.endpoint.path} does not resume: \"since_seq\" is for /ws/stream")
                return
            if type(since_seq) is not int or since_seq < 0:
                self.error(f"since_seq must be a non-negative integer (the last seq received), got "
                           f"{describe(since_seq)}; {symbol} was not subscribed")
                return
        if feed_id not in self.subscriptions and len(self.subscriptions) >= self.context.max_subscriptions:
            self.error(f"subscription limit reached: at most {self.context.max_subscriptions} symbols per "
                        f"connection; {symbol} was not subscribed")
            return
        refused = None if feed_id in self.subscriptions else self.peer.claim((feed_id,))  # the API key's feeds
        if refused is not None:
            self.error(refused)
            return
        self._drop(feed_id)  # a repeated subscribe replaces the choice of data types
        subscription = self.subscriptions[feed_id] = Subscription(symbol, feed_id, data_types, analysis, since_seq)
        if self.endpoint is STREAM:
            self._start(subscription)
        elif self.endpoint is ANALYSIS:
            self.peer.send(subscription_reply("subscribed", symbol, data_types))
            self._start_analysis(subscription)
        elif self.owned is not None:
            self.peer.send(subscription_reply("subscribed", symbol, data_types))
            self.owned.start(subscription)
        else:
            self.peer.send(subscription_reply("subscribed", symbol, data_types))

    def restart(self, subscription: Subscription) -> None:
        """Start a subscription afresh (an /ws/alerts or /ws/portfolio connection whose owner became known)."""
        for topic, subscriber in subscription.topics:
            self.hub.unsubscribe(topic, subscriber)
        subscription.topics.clear()
        if self.owned is not None:
            self.owned.start(subscription)

    def _analysis_choice(self, message: dict[str, Any]) -> tuple[Interval, Periods]:
        """A /ws/analysis subscription's candle ``interval`` and indicator ``periods``; ``ValueError``."""
        intervals = self.context.intervals
        if not intervals:
            raise ValueError("this service keeps no candles, so it has no analysis")
        labels = [i.label for i in intervals]
        raw = message.get("interval")
        if raw is None:
            raw = DEFAULT_ANALYSIS_INTERVAL if DEFAULT_ANALYSIS_INTERVAL in labels else labels[0]
        interval = next((i for i in intervals if isinstance(raw, str) and i.label == raw.strip().lower()), None)
        if interval is None:
            raise ValueError(f"unknown interval {describe(raw)}: this service keeps candles of {', '.join(labels)}")
        return interval, Periods.parse(message.get("periods"))

    def _unsubscribe(self, message: dict[str, Any]) -> None:
        feed_id, symbol = self.resolve(message, "unsubscribe")
        if feed_id is None:
            return
        self._drop(feed_id)
        self.peer.unclaim((feed_id,))
        self.peer.send(subscription_reply("unsubscribed", symbol))

    def resolve(self, message: dict[str, Any], command: str) -> tuple[FeedId | None, str]:
        """The feed a message's ``symbol`` names and its canonical symbol, or None after sending the error."""
        raw = message.get("symbol")
        if raw is None:
            self.error(f"{command} needs a \"symbol\", e.g. {{\"type\": \"{command}\", \"symbol\": \"RELIANCE\"}}")
            return None, ""
        if not isinstance(raw, str) or not raw.strip():
            self.error(f"\"symbol\" must be a non-empty string, got {describe(raw)}")
            return None, ""
        symbols = self.context.symbols
        feed_id = symbols.resolve(raw)
        if feed_id is None:
            known = symbols.known()
            shown = ", ".join(known[:SHOWN_SYMBOLS]) + (f" and {len(known) - SHOWN_SYMBOLS} more"
                                                       if len(known) > SHOWN_SYMBOLS else "")
            self.error(f"unknown symbol {describe(raw)}: known symbols are {shown or 'none yet'}")
            return None, ""
        return feed_id, symbols.symbol_of(feed_id)

    def symbol_of(self, feed_id: FeedId) -> str:
        """The canonical symbol clients see for a feed."""
        return self.context.symbols.symbol_of(feed_id)

    def error(self, text: str) -> None:
        self.peer.send(error(text))

    # -- what a subscription carries ----------------------------------------------------------

    def _start(self, subscription: Subscription) -> None:
        """Send what is known at once (the latest price, the recent candles), then subscribe to what comes."""
        feed_id, codecs, hub = subscription.feed_id, self.context.codecs, self.hub
        latest = hub.latest.get(feed_id)
        topics = subscription.topics
        since_seq, replay = subscription.since_seq, []
        recovered = None
        if since_seq is not None:
            recovery = (self.context.recent or RecentUpdates(keep_s=0)).since(feed_id, since_seq)
            replay, recovered = recovery.updates, recovery.recovered
        self.peer.send(subscription_reply("subscribed", subscription.symbol, subscription.data_types, recovered))
        if subscription.data_types is None:
            if since_seq is not None:
                self._replay(feed_id, codecs.data_with_seq, replay)
                topics.append((feed_id, self.lane(codecs.data_with_seq)))
            else:
                if latest is not None:
                    self.peer.send_price(feed_id, codecs.data.encode(feed_id, latest))
                topics.append((feed_id, self.peer))
        for name in subscription.data_types or ():
            if name == TICK:
                if since_seq is not None:
                    self._replay(feed_id, codecs.tick, replay)
                elif latest is not None:
                    self.peer.send_price(feed_id, codecs.tick.encode(feed_id, latest))
                topics.append((feed_id, self.lane(codecs.tick)))
            elif name == MARKET:
                topic = market_topic(feed_id)
                stats = None if self.context.analytics is None else self.context.analytics.days.stats.get(feed_id)
                if stats is not None:
                    self.peer.send_price(topic, codecs.market.encode(topic, stats))
                topics.append((topic, self.lane(codecs.market)))
            elif name.startswith(CANDLE_PREFIX):
                topics += self._start_candles(feed_id, name.removeprefix(CANDLE_PREFIX))
        for topic, subscriber in topics:
            hub.subscribe(topic, subscriber)

    def _replay(self, feed_id: FeedId, codec: Codec, updates: list[PriceUpdate]) -> None:
        """Missed updates, in order, ahead of any live frame of the feed: nothing runs between this and the hub's
        next pass, and the log holds every update the hub fanned out, so the live stream starts right after."""
        self.peer.discard_price(feed_id)
        for update in updates:
            self.peer.send(codec.encode(feed_id, update))

    def _start_candles(self, feed_id: FeedId, label: str) -> list[tuple[Topic, Subscriber]]:
        analytics = self.context.analytics
        interval = next(i for i in self.context.intervals if i.label == label)
        assert analytics is not None
        codec = self.context.codecs.candle
        finals, forming = analytics.candles.recent(feed_id, interval)
        final, current = final_topic(feed_id, interval), forming_topic(feed_id, interval)
        lane = self.final_lane(codec)
        payload = b""
        for bar in finals:
            payload = codec.encode(final, bar)
            self.peer.send(payload)
        if payload:
            lane.sent_in_snapshot(final, payload)
        if forming is not None:
            self.peer.send_price(current, codec.encode(current, forming))
        return [(final, lane), (current, self.lane(codec))]

    def _start_analysis(self, subscription: Subscription) -> None:
        """The last closed bar's analysis and the forming bar's at once, then each new one."""
        analytics = self.context.analytics
        assert analytics is not None and subscription.analysis is not None
        interval, periods = subscription.analysis
        forming, final = analytics.analysis.watch(subscription.feed_id, interval, periods)
        codec = self.context.codecs.analysis
        lane = self.final_lane(codec)
        latest = self.hub.latest_events
        last_final = latest.get(final)
        if last_final is not None:
            payload = codec.encode(final, last_final)
            self.peer.send(payload)
            lane.sent_in_snapshot(final, payload)
        last_forming = latest.get(forming)
        if last_forming is not None:
            self.peer.send_price(forming, codec.encode(forming, last_forming))
        subscription.topics += [(final, lane), (forming, self.lane(codec))]
        for topic, subscriber in subscription.topics:
            self.hub.subscribe(topic, subscriber)

    def lane(self, codec: Codec) -> Subscriber:
        lane = self._lanes.get(codec)
        if lane is None:
            lane = self._lanes[codec] = self.peer.lane(codec)
        return lane

    def final_lane(self, codec: Codec) -> FinalLane:
        lane = self._finals.get(codec)
        if lane is None:
            lane = self._finals[codec] = FinalLane(self.peer.lane(codec))
        return lane

    def _drop(self, feed_id: FeedId) -> None:
        subscription = self.subscriptions.pop(feed_id, None)
        if subscription is None:
            return
        for topic, subscriber in subscription.topics:
            self.hub.unsubscribe(topic, subscriber)
            self.peer.discard_price(topic)
