"""pricefeed's /v1/stream over a real socket: the auth subprotocol echoed only when offered, any token form
accepted while no API keys are configured, and bad input answered in Lazer's own form."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from ..service import in_process


@pytest.mark.parametrize(("offered", "query", "headers", "echoed"), [
    (["pyth-lazer-auth", "tok"], "", {}, "pyth-lazer-auth"),
    (None, "?ACCESS_TOKEN=tok", {}, None),
    (None, "", {"Authorization": "Bearer tok"}, None),
    (None, "", {}, None),
])
async def test_every_token_form_connects(tmp_path: Path, offered: list[str] | None, query: str,
                                         headers: dict[str, str], echoed: str | None) -> None:
    async with in_process(tmp_path) as app:
        url = f"ws://127.0.0.1:{app.api_port}/v1/stream{query}"
        subprotocols = None if offered is None else [Subprotocol(p) for p in offered]
        async with connect(url, subprotocols=subprotocols, additional_headers=headers) as ws:
            assert ws.subprotocol == echoed
            await ws.send("not json")
            reply = orjson.loads(await ws.recv())
            assert reply["type"] == "error" and reply["error"].startswith("failed to parse request: ")
            await ws.send(orjson.dumps({"type": "subscribe", "subscriptionId": 3, "priceFeedIds": [1],
                                        "properties": ["price"], "formats": [], "channel": "real_time"}).decode())
            assert orjson.loads(await ws.recv()) == {"type": "subscribed", "subscriptionId": 3}
            update = orjson.loads(await ws.recv())
            assert update["type"] == "streamUpdated" and update["parsed"]["priceFeeds"][0]["priceFeedId"] == 1


async def test_symbols_lists_every_feed_with_its_lazer_id(tmp_path: Path) -> None:
    import httpx

    async with in_process(tmp_path) as app, httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}") as http:
        rows = (await http.get("/v1/symbols")).json()
        fx = (await http.get("/v1/symbols", params={"asset_type": "fx"})).json()
        btc = (await http.get("/v1/symbols", params={"query": "bitcoin"})).json()
    assert len(rows) == len(app.hub.feeds) == 13
    assert [r["pyth_lazer_id"] for r in rows][:3] == [1, 2, 6]
    assert [(r["symbol"], r["pyth_lazer_id"]) for r in fx] == [("FX.EUR/USD", 327)]
    assert btc[0]["symbol"] == "Crypto.BTC/USD" and btc[0]["exponent"] == -8 and btc[0]["hermes_id"] == \
        "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
    assert all(r["pyth_lazer_id"] >= 2**30 for r in rows if r["symbol"] in ("Crypto.DOGE/USD", "Crypto.BNB/USD"))
