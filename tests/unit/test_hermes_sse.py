"""The Hermes SSE face without a network: framing, keep-alive, slow consumers."""

from __future__ import annotations

import pytest

from pricefeed.faces import hermes_sse
from pricefeed.hub import Hub
from pricefeed.model import Feed, PriceUpdate

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"


def hub_with_btc() -> Hub:
    hub = Hub()
    hub.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "test")])
    return hub


def update(step: int) -> PriceUpdate:
    return PriceUpdate(BTC, 6163088000000 + step, 3308129843, -8, (1714748301 + step) * 1_000_000, 6130103000000,
                       3587126400, prev_publish_time_us=(1714748300 + step) * 1_000_000, slot=138886135 + step)


async def test_an_event_is_hermes_framing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hermes_sse, "KEEPALIVE_S", 0.01)
    hub = hub_with_btc()
    response = hermes_sse.price_stream(hub, [BTC], encoding="hex", parsed=True, benchmarks_only=False)
    iterator = response.body_iterator
    assert await anext(iterator) == b":\n\n"  # type: ignore[call-overload]  # quiet: keep-alive comment
    hub.publish(update(0))
    hub.run_pass()
    event = await anext(iterator)  # type: ignore[call-overload]
    assert event == (b'data:{"binary":{"encoding":"hex","data":[]},"parsed":[{"id":"' + BTC.encode() +
                     b'","price":{"price":"6163088000000","conf":"3308129843","expo":-8,"publish_time":1714748301},'
                     b'"ema_price":{"price":"6130103000000","conf":"3587126400","expo":-8,"publish_time":1714748301},'
                     b'"metadata":{"slot":138886135,"proof_available_time":1714748301,'
                     b'"prev_publish_time":1714748300}}]}\n\n')
    assert response.headers["content-type"] == "text/event-stream"
    await iterator.aclose()  # type: ignore[attr-defined]
    assert hub.subscription_count() == 0


async def test_a_consumer_that_falls_behind_gets_the_slow_consumer_error_and_the_stream_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hermes_sse, "KEEPALIVE_S", 0.01)
    hub = hub_with_btc()
    response = hermes_sse.price_stream(hub, [BTC], encoding="hex", parsed=True, benchmarks_only=False)
    iterator = response.body_iterator
    assert await anext(iterator) == b":\n\n"  # type: ignore[call-overload]  # subscribed, then stops reading
    for step in range(1, hermes_sse.MAX_PENDING_EVENTS + 3):  # nobody reads meanwhile
        hub.publish(update(step))
        hub.run_pass()
    assert await anext(iterator) == hermes_sse.SLOW_CONSUMER  # type: ignore[call-overload]
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)  # type: ignore[call-overload]
    assert hub.subscription_count() == 0
