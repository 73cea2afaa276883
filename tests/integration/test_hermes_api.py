"""The Hermes-compatible API on the real service: Hermes' shapes, status codes and error texts."""

from __future__ import annotations

import json
import time

import httpx
from websockets.asyncio.client import connect

from ..service import ServiceProcess
from ..wsclient import BTC, ETH

UNKNOWN = "ab" * 32


async def test_price_feeds_metadata_and_filters(service: ServiceProcess) -> None:
    feeds = (await service.get("/v2/price_feeds")).json()
    assert len(feeds) == 13 and all(set(f) == {"id", "attributes"} for f in feeds)
    assert all(isinstance(v, str) for f in feeds for v in f["attributes"].values())
    btc = (await service.get("/v2/price_feeds", query="BTC")).json()
    assert [f["id"] for f in btc] == [BTC] and btc[0]["attributes"]["symbol"] == "Crypto.BTC/USD"
    assert [f["attributes"]["symbol"] for f in (await service.get("/v2/price_feeds", asset_type="fx")).json()] == [
        "FX.EUR/USD"]
    bad = await service.get("/v2/price_feeds", asset_type="Crypto")
    assert bad.status_code == 400 and bad.text.startswith(
        "Failed to deserialize query string. Error: unknown variant `Crypto`, expected one of `crypto`")


async def test_latest_updates_in_hermes_shape(service: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=service.api_url) as client:
        response = await client.get(f"/v2/updates/price/latest?ids%5B%5D=0x{BTC.upper()}&ids[]={ETH}")
    assert response.status_code == 200
    body = response.json()
    assert body["binary"] == {"encoding": "hex", "data": []}
    assert [p["id"] for p in body["parsed"]] == [BTC, ETH]
    item = body["parsed"][0]
    assert list(item) == ["id", "price", "ema_price", "metadata"]
    assert isinstance(item["price"]["price"], str) and isinstance(item["price"]["conf"], str)
    assert item["price"]["expo"] == -8 and abs(item["price"]["publish_time"] - time.time()) < 60
    assert item["ema_price"]["publish_time"] == item["price"]["publish_time"]
    assert set(item["metadata"]) == {"slot", "proof_available_time", "prev_publish_time"}
    no_parsed = (await service.get("/v2/updates/price/latest", **{"ids[]": BTC, "parsed": "false",
                                                                   "encoding": "base64"})).json()
    assert no_parsed == {"binary": {"encoding": "base64", "data": []}}


async def test_hermes_errors_are_plain_text_with_hermes_status_codes(service: ServiceProcess) -> None:
    cases = [
        ({"ids": BTC}, 400, f'Failed to deserialize query string. Error: invalid type: string "{BTC}", '
                            "expected a sequence"),
        ({"ids[]": BTC[:-1]}, 400, "Failed to deserialize query string. Error: Odd number of digits"),
        ({"ids[]": BTC + "00"}, 400, "Failed to deserialize query string. Error: Invalid string length"),
        ({"ids[]": "zz" + BTC[2:]}, 400, "Failed to deserialize query string. Error: Invalid character 'z' at "
                                         "position 0"),
        ({}, 400, "Failed to deserialize query string. Error: missing field `ids`"),
        ({"ids[]": BTC, "parsed": "yes"}, 400, "Failed to deserialize query string. Error: provided string was "
                                               "not `true` or `false`"),
        ({"ids[]": [BTC, UNKNOWN]}, 404, f"Price ids not found: 0x{UNKNOWN}"),
    ]
    for params, status, text in cases:
        response = await service.get("/v2/updates/price/latest", **params)
        assert (response.status_code, response.text) == (status, text), params
        assert response.headers["content-type"].startswith("text/plain")
    ignored = await service.get("/v2/updates/price/latest", **{"ids[]": [UNKNOWN, BTC],
                                                               "ignore_invalid_price_ids": "true"})
    assert [p["id"] for p in ignored.json()["parsed"]] == [BTC]


async def test_updates_at_a_time_come_from_the_history(service: ServiceProcess) -> None:
    latest = (await service.get("/v2/updates/price/latest", **{"ids[]": BTC})).json()["parsed"][0]
    t = latest["price"]["publish_time"]
    at = (await service.get(f"/v2/updates/price/{t}", **{"ids[]": BTC})).json()["parsed"][0]
    assert at["price"]["publish_time"] >= t
    assert (await service.get("/v2/updates/price/1000", **{"ids[]": BTC})).text == "Update data not found"
    assert (await service.get("/v2/updates/price/soon", **{"ids[]": BTC})).status_code == 400


async def test_legacy_endpoints(service: ServiceProcess) -> None:
    ids = (await service.get("/api/price_feed_ids")).json()
    assert BTC in ids and len(ids) == 13
    plain = (await service.get("/api/latest_price_feeds", **{"ids[]": BTC})).json()
    assert list(plain[0]) == ["id", "price", "ema_price"]
    verbose = (await service.get("/api/latest_price_feeds", **{"ids[]": BTC, "verbose": "true"})).json()
    assert list(verbose[0]["metadata"]) == ["slot", "emitter_chain", "price_service_receive_time",
                                            "prev_publish_time"]
    assert verbose[0]["metadata"]["emitter_chain"] == 26
    assert (await service.get("/api/latest_price_feeds", **{"ids[]": UNKNOWN})).status_code == 404
    assert (await service.get("/live")).text == "OK" and (await service.get("/ready")).text == "OK"


async def test_sse_stream_framing_and_updates(service: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=service.api_url, timeout=10) as client, client.stream(
            "GET", "/v2/updates/price/stream", params={"ids[]": [BTC, ETH]}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        chunks = b""
        async for chunk in response.aiter_bytes():
            chunks += chunk
            if chunks.count(b"\n\n") >= 4:
                break
    events = chunks.split(b"\n\n")[:4]
    times: dict[str, list[int]] = {BTC: [], ETH: []}
    seqs: dict[str, list[int]] = {BTC: [], ETH: []}
    for event in events:
        id_line, _, data = event.partition(b"\n")  # the id (lossless resume) is the one line Hermes has not
        assert id_line.startswith(b"id:") and len(id_line[3:].split(b".")) == 2, id_line
        seen = dict(zip((BTC, ETH), map(int, id_line[3:].split(b".")), strict=True))
        assert data.startswith(b'data:{"binary":{"encoding":"hex","data":[]},"parsed":[')
        for item in json.loads(data[len(b"data:"):])["parsed"]:
            times[item["id"]].append(item["metadata"]["slot"])
            seqs[item["id"]].append(seen[item["id"]])
    assert all(t == sorted(t) and len(set(t)) == len(t) for t in times.values())
    assert all(s == list(range(s[0], s[0] + len(s))) for s in seqs.values() if s)
    unknown = await service.get("/v2/updates/price/stream", **{"ids[]": UNKNOWN})
    assert (unknown.status_code, unknown.text) == (404, f"Price ids not found: 0x{UNKNOWN}")


async def test_websocket_subscribe_updates_and_errors(service: ServiceProcess) -> None:
    ws_url = service.api_url.replace("http", "ws") + "/ws"
    async with connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "ids": ["0x" + BTC], "verbose": True}))
        assert json.loads(await ws.recv()) == {"type": "response", "status": "success"}
        update = json.loads(await ws.recv())
        assert update["type"] == "price_update" and update["price_feed"]["id"] == BTC
        assert update["price_feed"]["metadata"]["emitter_chain"] == 26
        await ws.send(json.dumps({"type": "subscribe", "ids": [UNKNOWN]}))
        reply = await _next_response(ws)
        assert reply == {"type": "response", "status": "error",
                         "error": f"Price feed(s) with id(s) [0x{UNKNOWN}] not found"}
        await ws.send("garbage")
        assert (await _next_response(ws))["status"] == "error"
        await ws.send(json.dumps({"type": "subscribe", "ids": []}))
        assert await _next_response(ws) == {"type": "response", "status": "success"}
        await ws.send(json.dumps({"type": "unsubscribe", "ids": [BTC]}))
        assert await _next_response(ws) == {"type": "response", "status": "success"}
        await ws.send(json.dumps({"type": "subscribe", "ids": [ETH]}))
        assert await _next_response(ws) == {"type": "response", "status": "success"}
        after = [json.loads(await ws.recv()) for _ in range(5)]
    assert all(m["price_feed"]["id"] == ETH and "metadata" not in m["price_feed"] for m in after)


async def _next_response(ws: object) -> dict[str, object]:
    while True:
        message = json.loads(await ws.recv())  # type: ignore[attr-defined]
        if message["type"] == "response":
            return message  # type: ignore[no-any-return]


async def test_pythclient_hermes_client(service: ServiceProcess) -> None:
    from pythclient.hermes import HermesClient

    client = HermesClient([BTC, ETH], endpoint=service.api_url + "/", ws_endpoint=service.api_url + "/ws")
    assert set(await client.get_price_feed_ids()) >= {BTC, ETH}
    latest = await client.get_pyth_prices_latest([BTC, ETH])
    assert [f["feed_id"] for f in latest] == [BTC, ETH]
    assert latest[0]["price"].price > 0 and latest[0]["price"].expo == -8
    everything = await client.get_all_prices()
    assert set(everything) == {BTC, ETH}
    at = await client.get_pyth_price_at_time(BTC, latest[0]["price"].publish_time)
    assert at["feed_id"] == BTC
