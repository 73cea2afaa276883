"""--tls-cert/--tls-key: every listener speaks TLS, to real clients that trust a certificate made for the test."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from pricefeed.config import ConfigError, load_settings

from ..service import in_process
from ..wsclient import BTC, is_type, recv_json, recv_until, send

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def self_signed(where: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM), made with the openssl command."""
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return cert, key


async def test_every_listener_speaks_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    async with in_process(tmp_path, tls_cert=str(cert), tls_key=str(key), rpc=True, rpc_host="127.0.0.1",
                          rpc_port=0) as app, httpx.AsyncClient(verify=trust) as http:
        async with connect(f"wss://127.0.0.1:{app.ws_port}/", ssl=trust) as ws:
            await send(ws, {"type": "subscribe", "feed_id": BTC})
            assert (await recv_until(ws, is_type("price_update")))["data"]["id"] == BTC
        async with connect(f"wss://127.0.0.1:{app.api_port}/ws", ssl=trust) as ws:
            await send(ws, {"type": "subscribe", "ids": [BTC]})
            assert (await recv_until(ws, is_type("price_update")))["price_feed"]["id"] == BTC
        async with connect(f"wss://127.0.0.1:{app.api_port}/v1/stream", ssl=trust) as ws:
            await send(ws, {"type": "subscribe", "subscriptionId": 1, "priceFeedIds": [1], "properties": ["price"],
                            "formats": [], "channel": "real_time"})
            assert (await recv_json(ws)) == {"type": "subscribed", "subscriptionId": 1}
        async with connect(f"wss://127.0.0.1:{app.streams_port}/ws/stream", ssl=trust) as ws:
            assert (await recv_json(ws))["type"] == "connection"
        async with connect(f"wss://127.0.0.1:{app.listeners.port('pythd')}/", ssl=trust) as ws:
            await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "get_product_list"}).decode())
            assert "result" in await recv_json(ws)
        assert (await http.get(f"https://127.0.0.1:{app.api_port}/health")).status_code == 200
        async with http.stream("GET", f"https://127.0.0.1:{app.api_port}/v2/updates/price/stream",
                               params={"ids[]": BTC}) as sse:
            assert sse.status_code == 200
            async for line in sse.aiter_lines():
                if line.startswith("data:"):
                    assert orjson.loads(line[5:])["parsed"][0]["id"] == BTC
                    break
        assert (await http.get(f"https://127.0.0.1:{app.streams_port}/health")).status_code == 200
        socket_io = await http.get(f"https://127.0.0.1:{app.crypto_port}/socket.io/",
                                   params={"EIO": "4", "transport": "polling"})
        assert socket_io.status_code == 200 and socket_io.text.startswith('0{"sid":')
        async with httpx.AsyncClient() as untrusting:  # a client that does not trust the certificate stops
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get(f"https://127.0.0.1:{app.api_port}/health")


def test_tls_needs_both_files_and_says_what_is_wrong_with_them(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with pytest.raises(ConfigError, match="--tls-cert and --tls-key go together"):
        load_settings({"tls_cert": str(cert)})
    with pytest.raises(ConfigError, match="--tls-cert/--tls-key"):
        load_settings({"tls_cert": str(key), "tls_key": str(key)})
    assert load_settings({"tls_cert": str(cert), "tls_key": str(key)}).tls is not None
