"""The divergence watch on a fake clock: which feeds are one asset, the exact spread, the hold before a raise,
the hysteresis before a clear, stale sources, and what /status and /metrics read."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pricefeed.alerts import AlertEvent
from pricefeed.assets import asset_key, parse_asset
from pricefeed.catalog import KNOWN_FEEDS
from pricefeed.coins import KNOWN_COINS, Coin
from pricefeed.config import ConfigError, load_settings
from pricefeed.divergence import DivergenceAlert, DivergenceCollector, DivergenceWatch, divergence_topic
from pricefeed.faces.streams.codecs import StreamCodecs
from pricefeed.faces.streams.symbols import SymbolIndex
from pricefeed.hub import Hub
from pricefeed.lazer_ids import LAZER_ID_ATTRIBUTE
from pricefeed.metrics import Metrics
from pricefeed.model import Feed, PriceUpdate, Status
from pricefeed.sources.coingecko_wire import coin_feed
from pricefeed.sources.exchange import exchange_feed

BTC = next(k for k in KNOWN_FEEDS if k.symbol == "Crypto.BTC/USD")
ETH = next(k for k in KNOWN_FEEDS if k.symbol == "Crypto.ETH/USD")
T0 = 1_764_720_000.0  # 2025-12-03 00:00:00 UTC
HERMES_BTC = Feed(BTC.id, BTC.symbol, BTC.expo, "hermes", BTC.attributes())
GECKO_BTC = coin_feed(KNOWN_COINS["BTC"])
BTC_USDT = coin_feed(Coin("BTC", "bitcoin-usdt"))


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A hub subscriber that keeps every divergence alert handed to it, in order."""

    def __init__(self) -> None:
        self.codec = self
        self.face = "test"
        self.alerts: list[DivergenceAlert] = []

    def encode(self, topic: str, item: object) -> bytes:
        assert isinstance(item, DivergenceAlert)
        self.alerts.append(item)
        return b""

    def deliver(self, frames: dict[str, bytes]) -> None:
        pass


def price(feed: Feed, value: int, source: str, at: float, status: Status = Status.TRADING) -> PriceUpdate:
    """``value`` in whole units of the quote, published at unix time ``at``."""
    mantissa = value * 10 ** -feed.expo
    return PriceUpdate(feed.id, mantissa, 0, feed.expo, int(at * 1_000_000), mantissa, 0, status=status,
                       source=source)


def spread(*prices: float) -> float:
    ordered = sorted(prices)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return (ordered[-1] - ordered[0]) / median * 10_000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hub() -> Hub:
    hub = Hub()
    hub.add_feeds([HERMES_BTC, GECKO_BTC, BTC_USDT])
    return hub


@pytest.fixture
def watch(hub: Hub, clock: FakeClock) -> DivergenceWatch:
    return DivergenceWatch(hub, threshold_bps=50, hold_s=5, max_age_s=60, clock=clock)


async def recorded(hub: Hub, asset: str = "BTC/USD") -> Recorder:
    recorder = Recorder()
    hub.subscribe(divergence_topic(asset), recorder)
    return recorder


async def settle() -> None:
    """Let the hub publish the derived topics of the last pass (it does so on the next loop iteration)."""
    await asyncio.sleep(0)


# -- which feeds are one asset ------------------------------------------------------------------------


def test_each_source_names_btc_usd_its_way_and_gets_one_key() -> None:
    lazer_only = Feed("12" * 32, "Crypto.XYZ/USD", -8, "lazer", {"symbol": "Crypto.XYZ/USD", LAZER_ID_ATTRIBUTE: "9"})
    oracle = Feed("34" * 32, "Crypto.BTC/USD", -8, "oracle", {"symbol": "Crypto.BTC/USD"})
    assert asset_key(HERMES_BTC) == "BTC/USD"
    assert asset_key(GECKO_BTC) == "BTC/USD"
    assert asset_key(oracle) == "BTC/USD"
    assert asset_key(lazer_only) == "XYZ/USD"
    assert asset_key(BTC_USDT) == "BTC/USD"  # a coin's quote is CoinGecko's vs currency: USD


def test_quotes_venues_and_kinds_keep_assets_apart() -> None:
    usdt = Feed("56" * 32, "Crypto.BTC/USDT", -8, "hermes", {"base": "BTC", "quote_currency": "USDT",
                                                             "asset_type": "Crypto"})
    index = Feed("78" * 32, "Crypto Index.GMCI30/USD", -8, "hermes",
                 {"asset_type": "Crypto Index", "base": "GMCI30", "quote_currency": "USD"})
    nse = exchange_feed("9a" * 32, exchange="NSE", trading_symbol="RELIANCE", name="Reliance", expo=-2, source="kite")
    bse = exchange_feed("bc" * 32, exchange="BSE", trading_symbol="RELIANCE", name="Reliance", expo=-2, source="kite")
    assert asset_key(usdt) == "BTC/USDT"
    assert asset_key(index) is None
    assert asset_key(nse) == "NSE.RELIANCE/INR"
    assert asset_key(bse) == "BSE.RELIANCE/INR"
    assert asset_key(Feed("de" * 32, "Lazer.77", -8, "lazer", {"symbol": "Lazer.77"})) is None
    assert asset_key(coin_feed(KNOWN_COINS["MATIC"])) == "POL/USD"  # MATIC trades as POL today


def test_clients_write_assets_in_several_ways() -> None:
    assert [parse_asset(t) for t in ("btc/usd", "BTC-USD", "btc_usd", " eth/usdt ", "nse.reliance/inr")] == [
        "BTC/USD", "BTC/USD", "BTC/USD", "ETH/USDT", "NSE.RELIANCE/INR"]


# -- the spread and the flag ----------------------------------------------------------------------------


async def test_spread_is_exact_in_basis_points_of_the_median(hub: Hub, watch: DivergenceWatch,
                                                            clock: FakeClock) -> None:
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0), price(GECKO_BTC, 101, "coingecko", T0)])
    [shared] = watch.shared()
    assert shared.asset == "BTC/USD"
    assert shared.spread_bps == spread(100, 101) == 1 / 100.5 * 10_000
    clock.now = T0 + 1.5
    view = watch.view("BTC/USD")
    assert view == {
        "asset": "BTC/USD", "median": 100.5, "spread_bps": 99.5025, "threshold_bps": 50, "clear_bps": 40.0,
        "diverging": False, "since": None,
        "sources": {"coingecko": {"price": 101.0, "age_s": 1.5, "status": "trading", "feed_id": GECKO_BTC.id},
                    "hermes": {"price": 100.0, "age_s": 1.5, "status": "trading", "feed_id": HERMES_BTC.id}}}


async def test_three_sources_spread_over_their_median(hub: Hub, watch: DivergenceWatch) -> None:
    # Hermes and Lazer share Pyth's feed id for BTC/USD: the update's source tells them apart.
    watch.add_updates([price(HERMES_BTC, 1000, "hermes", T0), price(HERMES_BTC, 1002, "lazer", T0),
                       price(GECKO_BTC, 1030, "coingecko", T0)])
    [shared] = watch.shared()
    assert sorted(shared.latest) == ["coingecko", "hermes", "lazer"]
    assert shared.spread_bps == spread(1000, 1002, 1030) == 30 / 1002 * 10_000
    assert watch.view("btc/usd") is None  # the watch takes keys; faces normalise what clients write
    view = watch.view("BTC/USD")
    assert view is not None and view["median"] == 1002.0


async def test_raised_once_after_the_hold_and_cleared_once_after_converging(hub: Hub, watch: DivergenceWatch,
                                                                           clock: FakeClock) -> None:
    recorder = await recorded(hub)
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0), price(GECKO_BTC, 101, "coingecko", T0)])
    for step in range(1, 10):  # 4.5 s over the threshold: not yet
        clock.now = T0 + step * 0.5
        watch.tick()
    await settle()
    assert recorder.alerts == [] and watch.flagged() == []
    clock.now = T0 + 5.0
    watch.add_updates([price(GECKO_BTC, 101, "coingecko", T0 + 5.0)])
    await settle()
    [raised] = recorder.alerts
    assert (raised.state, raised.asset, raised.spread_bps, raised.since_us) == (
        "raised", "BTC/USD", spread(100, 101), int(T0 * 1_000_000))
    assert watch.flagged() == [{
        "asset": "BTC/USD", "spread_bps": 99.5025, "since": "2025-12-03T00:00:00.000Z",
        "sources": {"coingecko": {"price": 101.0, "age_s": 0.0, "status": "trading"},
                    "hermes": {"price": 100.0, "age_s": 5.0, "status": "trading"}}}]
    for step in range(1, 20):  # still diverging: no second alert
        clock.now = T0 + 5.0 + step * 0.5
        watch.tick()
    await settle()
    assert len(recorder.alerts) == 1
    clock.now = T0 + 20.0
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0 + 20.0), price(GECKO_BTC, 100, "coingecko", T0 + 20.0)])
    clock.now = T0 + 24.9
    watch.tick()
    await settle()
    assert len(recorder.alerts) == 1 and watch.flagged() != []
    clock.now = T0 + 25.0
    watch.tick()
    await settle()
    assert [a.state for a in recorder.alerts] == ["raised", "cleared"]
    cleared = recorder.alerts[1]
    assert (cleared.spread_bps, cleared.since_us, cleared.time_us) == (0.0, int(T0 * 1_000_000),
                                                                      int((T0 + 25.0) * 1_000_000))
    assert watch.flagged() == []
    assert watch.alerts_published == {"raised": 1, "cleared": 1}


async def test_a_spread_inside_the_hysteresis_band_neither_clears_nor_raises_again(
        hub: Hub, watch: DivergenceWatch, clock: FakeClock) -> None:
    recorder = await recorded(hub)
    watch.add_updates([price(HERMES_BTC, 10_000, "hermes", T0), price(GECKO_BTC, 10_060, "coingecko", T0)])
    clock.now = T0 + 5
    watch.tick()  # 59.8 bps for 5 s: raised
    for second in range(6, 60):  # then 45 bps, between the clear level (40) and the threshold (50), for long
        clock.now = T0 + second
        watch.add_updates([price(HERMES_BTC, 10_000, "hermes", clock.now),
                           price(GECKO_BTC, 10_045, "coingecko", clock.now)])
    await settle()
    assert [a.state for a in recorder.alerts] == ["raised"]
    assert watch.flagged()[0]["spread_bps"] == round(spread(10_000, 10_045), 4)


async def test_a_short_excursion_raises_nothing(hub: Hub, watch: DivergenceWatch, clock: FakeClock) -> None:
    recorder = await recorded(hub)
    for second in range(30):  # over the threshold for 4 s of every 5
        clock.now = T0 + second
        diverging = second % 5 != 4
        watch.add_updates([price(HERMES_BTC, 100, "hermes", clock.now),
                           price(GECKO_BTC, 101 if diverging else 100, "coingecko", clock.now)])
    await settle()
    assert recorder.alerts == []
    assert watch.status() == {"shared_assets": 1, "flagged": 0, "alerts": {"raised": 0, "cleared": 0}}


async def test_a_stale_source_leaves_nothing_to_compare_and_the_flag_clears(hub: Hub, watch: DivergenceWatch,
                                                                            clock: FakeClock) -> None:
    recorder = await recorded(hub)
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0), price(GECKO_BTC, 110, "coingecko", T0)])
    clock.now = T0 + 5
    watch.tick()
    await settle()
    for second in range(6, 70):  # Hermes goes on; CoinGecko stops, and is stale after 60 s
        clock.now = T0 + second
        watch.add_updates([price(HERMES_BTC, 100, "hermes", clock.now)])
    await settle()
    assert [a.state for a in recorder.alerts] == ["raised", "cleared"]
    cleared = recorder.alerts[1]
    assert cleared.spread_bps is None
    assert cleared.time_us == int((T0 + 66) * 1_000_000)  # stale from 61 s (age 61 > 60), then held 5 s
    assert {s: p.status for s, p in cleared.sources.items()} == {"coingecko": "stale", "hermes": "trading"}


async def test_a_halted_source_is_shown_but_not_compared(hub: Hub, watch: DivergenceWatch) -> None:
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0),
                       price(GECKO_BTC, 200, "coingecko", T0, status=Status.HALTED)])
    view = watch.view("BTC/USD")
    assert view is not None
    assert (view["spread_bps"], view["median"]) == (None, 100.0)
    assert view["sources"]["coingecko"]["status"] == "halted"


async def test_different_quotes_are_never_compared(watch: DivergenceWatch) -> None:
    usdt = Feed("56" * 32, "Crypto.BTC/USDT", -8, "hermes", {"base": "BTC", "quote_currency": "USDT",
                                                             "asset_type": "Crypto"})
    watch.hub.add_feeds([usdt])
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0), price(usdt, 150, "lazer", T0)])
    assert watch.shared() == []
    assert sorted(watch.assets) == ["BTC/USD", "BTC/USDT"]


async def test_metrics_show_each_shared_assets_spread_and_flag(hub: Hub, watch: DivergenceWatch,
                                                               clock: FakeClock) -> None:
    metrics = Metrics()
    metrics.registry.register(DivergenceCollector(watch))
    eth = Feed(ETH.id, ETH.symbol, ETH.expo, "hermes", ETH.attributes())
    hub.add_feeds([eth, coin_feed(KNOWN_COINS["ETH"])])
    watch.add_updates([price(HERMES_BTC, 100, "hermes", T0), price(GECKO_BTC, 101, "coingecko", T0),
                       price(eth, 2000, "hermes", T0), price(coin_feed(KNOWN_COINS["ETH"]), 2001, "coingecko", T0)])
    clock.now = T0 + 5
    watch.tick()
    text = metrics.exposition().decode()
    assert f'pricefeed_divergence_bps{{asset="BTC/USD"}} {spread(100, 101)!r}' in text
    assert f'pricefeed_divergence_bps{{asset="ETH/USD"}} {spread(2000, 2001)!r}' in text
    assert 'pricefeed_divergence_flagged{asset="BTC/USD"} 1.0' in text
    assert 'pricefeed_divergence_flagged{asset="ETH/USD"} 0.0' in text
    assert 'pricefeed_divergence_alerts_total{state="raised"} 1.0' in text
    assert 'pricefeed_divergence_alerts_total{state="cleared"} 0.0' in text


def test_the_clear_level_may_not_be_above_the_threshold(hub: Hub) -> None:
    with pytest.raises(ValueError, match="must not be above the threshold"):
        DivergenceWatch(hub, threshold_bps=50, clear_bps=60)


def test_settings_refuse_a_clear_level_above_the_threshold() -> None:
    assert load_settings({"divergence_bps": 50, "divergence_clear_bps": 40}).divergence_clear_bps == 40
    with pytest.raises(ConfigError, match=r"--divergence-clear-bps \(60.0\) must not be above --divergence-bps "
                                          r"\(50.0\)"):
        load_settings({"divergence_bps": 50, "divergence_clear_bps": 60})


async def test_ws_alerts_messages_name_the_symbol_clients_use_and_list_the_current_divergence(
        hub: Hub, watch: DivergenceWatch, clock: FakeClock) -> None:
    kite = exchange_feed("9a" * 32, exchange="NSE", trading_symbol="RELIANCE", name="Reliance", expo=-2, source="kite")
    sim = exchange_feed("9b" * 32, exchange="NSE", trading_symbol="RELIANCE", name="Reliance", expo=-2, source="sim",
                        simulated=True)
    hub.add_feeds([kite, sim])
    recorder = await recorded(hub, "NSE.RELIANCE/INR")
    codecs = StreamCodecs(SymbolIndex(hub.feeds), None, watch)
    watch.add_updates([price(kite, 1400, "kite", T0), price(sim, 1420, "sim", T0)])
    quiet = orjson.loads(codecs.alerts.encode("alerts:alice:" + kite.id, AlertEvent("alice", kite.id, 0, ())))
    assert quiet["data"]["divergence_alerts"] == []
    clock.now = T0 + 5
    watch.tick()
    await settle()
    [raised] = recorder.alerts
    message = orjson.loads(codecs.divergence.encode(divergence_topic("NSE.RELIANCE/INR"), raised))
    assert (message["type"], message["data_type"], message["symbol"], message["timestamp"]) == (
        "data", "alerts", "RELIANCE", "2025-12-03T00:00:05.000Z")
    assert message["data"] == {
        "owner": None, "price_alerts": [], "volume_alerts": [], "breakout_alerts": [],
        "divergence_alerts": [{
            "type": "divergence", "triggered": True, "state": "raised", "asset": "NSE.RELIANCE/INR",
            "spread_bps": round(spread(1400, 1420), 4), "threshold_bps": 50, "since": "2025-12-03T00:00:00.000Z",
            "triggered_at": "2025-12-03T00:00:05.000Z",
            "sources": {"kite": {"price": 1400.0, "age_s": 5.0, "status": "trading"},
                        "sim": {"price": 1420.0, "age_s": 5.0, "status": "trading"}}}]}
    owners = orjson.loads(codecs.alerts.encode("alerts:alice:" + sim.id, AlertEvent("alice", sim.id, 0, ())))
    [current] = owners["data"]["divergence_alerts"]
    assert (current["triggered"], current["state"], current["asset"]) == (False, "raised", "NSE.RELIANCE/INR")
