"""The Kite Connect ticker as a source (``--source kite``): NSE and BSE instruments, by their trading symbols.

It offers the instruments of ``--kite-instruments`` (or of ``--kite-symbols``
among them) as feeds, and streams the ones clients want plus the
``--kite-symbols``, in ``--kite-mode``. A tick's publish time is Kite's
exchange timestamp where the packet has one (full mode), else when it
arrived; ticks of one second keep their order a microsecond apart. A packet
repeating the previous one of its instrument exactly (Kite's snapshot on
resubscribe) is dropped. Kite prices are exchange trade prices: they carry no
confidence (``conf`` 0 and the feed's ``confidence`` attribute ``none``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...bus.base import Sink
from ...model import FeedId, PriceUpdate, Quote, Status
from ..base import Source, SourceState
from .connection import KiteTicker
from .instruments import Instrument, load_instruments, select
from .wire import Tick

if TYPE_CHECKING:
    from ...config import Settings


def tick_update(tick: Tick, feed_id: FeedId, publish_time_us: int, source: str = "kite") -> PriceUpdate:
    """A tick as the model's update: the trade price, its quantity, the day's volume and the exchange's figures."""
    return PriceUpdate(feed_id=feed_id, price=tick.last_price, conf=0, expo=tick.expo,
                       publish_time_us=publish_time_us, ema_price=tick.last_price, ema_conf=0, status=Status.TRADING,
                       source=source, volume=tick.volume, quantity=tick.last_quantity, quote=_quote(tick))


def _quote(tick: Tick) -> Quote | None:
    """Kite's session figures (a zero means "not sent") and the book's levels that hold orders."""
    ohlc = tick.ohlc
    if ohlc is None and not tick.bids and not tick.asks:
        return None
    bids = tuple(level for level in tick.bids if level.quantity)
    asks = tuple(level for level in tick.asks if level.quantity)
    if ohlc is None:
        return Quote(bids=bids, asks=asks)
    return Quote(open=ohlc.open or None, high=ohlc.high or None, low=ohlc.low or None,
                 previous_close=ohlc.close or None, bids=bids, asks=asks)


class KiteSource(Source):
    name = "kite"

    def __init__(self, sink: Sink, instruments: list[Instrument], *, url: str, api_key: str, access_token: str,
                 always: list[Instrument] | None = None, mode: str = "full", silence_timeout_s: float = 10.0,
                 demand_poll_s: float = 1.0) -> None:
        super().__init__(sink)
        self.instruments = {i.token: i for i in instruments}
        self.feeds = {i.token: i.feed(self.name) for i in instruments}
        self._token_of = {feed.id: token for token, feed in self.feeds.items()}
        self.always = {i.token for i in always or ()}
        self._last_tick: dict[int, Tick] = {}
        self._last_publish: dict[int, int] = {}
        self.duplicates = 0
        self.unknown_tokens = 0
        self.ticker = KiteTicker(url, api_key, access_token, mode=mode, wanted=self.wanted, on_ticks=self.on_ticks,
                                 on_state=self._on_state, silence_timeout_s=silence_timeout_s,
                                 demand_poll_s=demand_poll_s)

    @classmethod
    def from_settings(cls, sink: Sink, settings: Settings) -> KiteSource:
        assert settings.kite_instruments and settings.kite_api_key and settings.kite_access_token  # config checks
        instruments = load_instruments(Path(settings.kite_instruments))
        always = select(instruments, settings.kite_symbols)
        return cls(sink, always or instruments, url=settings.kite_url,
                   api_key=settings.kite_api_key.get_secret_value(),
                   access_token=settings.kite_access_token.get_secret_value(), always=always,
                   mode=settings.kite_mode, silence_timeout_s=settings.kite_silence_timeout)

    async def start(self) -> None:
        self.sink.add_feeds(self.feeds.values())
        self.spawn(self.ticker.run(), "kite-ticker")

    def wanted(self) -> set[int]:
        """Tokens to stream: the configured ones and those of feeds some client subscribes to."""
        token_of = self._token_of
        return self.always | {token_of[f] for f in self.sink.demand() if f in token_of}

    def on_ticks(self, ticks: list[Tick], received_us: int) -> None:
        self.mark_message(len(ticks))
        updates = []
        for tick in ticks:
            token = tick.instrument_token
            feed = self.feeds.get(token)
            if feed is None:
                self.unknown_tokens += 1
                continue
            if self._last_tick.get(token) == tick:
                self.duplicates += 1
                continue
            self._last_tick[token] = tick
            stamp = received_us if tick.exchange_timestamp is None else tick.exchange_timestamp * 1_000_000
            publish = self._last_publish[token] = max(stamp, self._last_publish.get(token, 0) + 1)
            updates.append(tick_update(tick, feed.id, publish, self.name))
        if updates:
            self.mark_published(max(u.publish_time_us for u in updates))
            self.sink.publish_many(updates)

    def _on_state(self, connected: bool, error: str | None) -> None:
        if connected:
            self.set_state(SourceState.CONNECTED)
        else:
            self.reconnects += 1
            self.set_state(SourceState.RECONNECTING, error)

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(url=self.ticker.display_url, mode=self.ticker.mode, instruments=len(self.instruments),
                      streaming=len(self.ticker.subscribed), connections=self.ticker.connections,
                      bad_frames=self.ticker.bad_frames, duplicates=self.duplicates,
                      unknown_tokens=self.unknown_tokens)
        return status
