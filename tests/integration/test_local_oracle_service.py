"""A publisher written for pythd publishes into the real service; seed-000 and Hermes clients see the aggregate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import base58
from websockets.asyncio.client import connect

from ..service import ServiceProcess, free_port
from ..wsclient import is_type, recv_json, recv_until, send

PRODUCTS = Path(__file__).resolve().parents[2] / "examples" / "products.json"


async def test_a_pythd_publisher_drives_a_feed_every_face_serves(tmp_path: Path) -> None:
    rpc_port = free_port()
    svc = await ServiceProcess(tmp_path / "db", "--source", "sim", "--products", str(PRODUCTS),
                               "--rpc-port", str(rpc_port), "--slot-interval", "0.05").start()
    try:
        async with connect(f"ws://127.0.0.1:{rpc_port}/") as publisher, connect(svc.ws_url) as client:
            await publisher.send(json.dumps({"jsonrpc": "2.0", "method": "get_product_list", "id": 1}))
            products = json.loads(await publisher.recv())["result"]
            demo = next(p for p in products if p["attr_dict"]["symbol"] == "Crypto.DEMO/USD")
            account = demo["price"][0]["account"]
            feed_id = base58.b58decode(account).hex()
            await recv_json(client)
            await send(client, {"type": "subscribe", "feed_id": feed_id})
            await recv_until(client, is_type("subscription_confirmed"))

            async def publish_until_seen() -> dict[str, object]:
                request_id = 10
                while True:  # one quote per slot: the aggregate follows one slot later
                    request_id += 1
                    await publisher.send(json.dumps({"jsonrpc": "2.0", "method": "update_price", "id": request_id,
                                                     "params": {"account": account, "price": 4200012, "conf": 300,
                                                                "status": "trading"}}))
                    assert json.loads(await publisher.recv()) == {"jsonrpc": "2.0", "result": 0, "id": request_id}
                    try:
                        return (await recv_until(client, is_type("price_update"), timeout=0.2))["data"]
                    except TimeoutError:
                        continue

            data = await asyncio.wait_for(publish_until_seen(), 15)
        assert data["id"] == feed_id and data["price"] == 42.00012 and data["conf"] == 0.003
        assert data["status"] == "trading" and data["expo"] == -5
        hermes = (await svc.get("/v2/updates/price/latest", **{"ids[]": feed_id})).json()["parsed"][0]
        assert hermes["price"]["price"] == "4200012" and hermes["price"]["expo"] == -5
        assert (await svc.get("/health")).json()["status"] == "ok"
    finally:
        await svc.stop()
