"""Keys on the Socket.IO face (seed 002): socket.io-client v4 presents one in the connect packet's ``auth``."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import socketio

from ..service import in_process

JS = Path(__file__).resolve().parents[1] / "js"

KEYS = """
[[keys]]
name = "btc-only"
key = "btc-secret"
feeds = ["Crypto.BTC/USD"]

[[keys]]
name = "hermes-only"
key = "hermes-secret"
faces = ["hermes"]

[[keys]]
name = "single"
key = "single-secret"
limits = { connections = 1 }
"""

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "socket.io-client").is_dir(),
    reason="needs Node.js and `npm ci --prefix tests/js` (scripts/test does both when npm is present)")


async def socket_io_client(url: str, token: str | None, channel: str = "crypto-prices") -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        "node", str(JS / "crypto_auth.mjs"), url, token or "-", channel,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def refusal(url: str, token: str) -> str:
    """The connect_error a python-socketio client gets for ``token``."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, transports=["websocket"], auth={"token": token}, wait_timeout=5)
    [error] = errors
    return str(error["message"])


async def test_socket_io_refuses_a_missing_wrong_or_over_limit_key_with_a_connect_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    async with in_process(tmp_path, keys=str(keys)) as app:
        url = f"http://127.0.0.1:{app.crypto_port}"
        assert await socket_io_client(url, None) == {
            "connectError": "crypto: an API key is required: io(url, {auth: {token: KEY}})"}
        assert await socket_io_client(url, "btc-secret", "crypto-prices:BTC") == {
            "ack": {"ok": True, "channel": "crypto-prices:BTC"}}
        assert await refusal(url, "nope") == "crypto: the API key is not valid"
        assert await refusal(url, "hermes-secret") == "crypto: the API key 'hermes-only' may not use this face"
        held = socketio.AsyncClient(reconnection=False)
        await held.connect(url, transports=["websocket"], auth={"token": "single-secret"}, wait_timeout=5)
        assert await refusal(url, "single-secret") == "crypto: the API key 'single' has its 1 connections open already"
        assert await held.call("subscribe", {"channel": "crypto-prices"}, timeout=5) == {
            "ok": True, "channel": "crypto-prices"}  # the one it holds goes on
        await held.disconnect()
        btc_only = socketio.AsyncClient(reconnection=False)
        await btc_only.connect(url, transports=["websocket"], auth={"token": "btc-secret"}, wait_timeout=5)
        refused = await btc_only.call("subscribe", {"channel": "crypto-prices:ETH"}, timeout=5)
        assert refused["ok"] is False and refused["error"].startswith("the API key 'btc-only' may not see ")
        assert (await btc_only.call("subscribe", {"channel": "crypto-prices:BTC"}, timeout=5))["ok"] is True
        await btc_only.disconnect()
        for reason in ("missing_key", "wrong_key", "face_not_allowed", "feed_not_allowed", "key_connections"):
            assert app.metrics.total("pricefeed_refusals_total", face="crypto", reason=reason) == 1, reason
