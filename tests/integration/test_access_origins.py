"""--cors-origins on every face: a browser origin not listed is refused by each listener; REST answers CORS."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from pricefeed.config import load_settings
from pricefeed.faces import crypto_origins

from ..service import in_process
from ..wsclient import BTC

ALLOWED = "http://app.example:3000"
EVIL = "http://evil.example"


async def test_a_disallowed_origin_is_refused_by_every_listener_and_an_allowed_one_gets_cors(tmp_path: Path) -> None:
    async with in_process(tmp_path, cors_origins=[ALLOWED]) as app, httpx.AsyncClient() as http:
        sockets = {"seed000": f"ws://127.0.0.1:{app.ws_port}/", "hermes_ws": f"ws://127.0.0.1:{app.api_port}/ws",
                   "lazer": f"ws://127.0.0.1:{app.api_port}/v1/stream",
                   "streams_stream": f"ws://127.0.0.1:{app.streams_port}/ws/stream"}
        for face, url in sockets.items():
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, origin=Origin(EVIL), open_timeout=5):
                    pass
            assert refused.value.response.status_code == 403, face
            assert f"origin '{EVIL}' is not allowed" in refused.value.response.body.decode(), face
            async with connect(url, origin=Origin(ALLOWED)):
                pass
            async with connect(url):  # not a browser: no Origin, not subject to it
                pass
            assert app.metrics.total("pricefeed_refusals_total", face=face, reason="origin") == 1, face
        api = f"http://127.0.0.1:{app.api_port}"
        for path in ("/v2/updates/price/latest", "/v2/updates/price/stream"):
            refused_http = await http.get(api + path, params={"ids[]": BTC}, headers={"Origin": EVIL})
            assert refused_http.status_code == 403, path
            assert "access-control-allow-origin" not in refused_http.headers
        for face in ("hermes_rest", "hermes_sse"):
            assert app.metrics.total("pricefeed_refusals_total", face=face, reason="origin") == 1, face
        allowed = await http.get(f"{api}/feeds", headers={"Origin": ALLOWED})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED
        asks = {"Origin": ALLOWED, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization"}
        preflight = await http.options(f"{api}/feeds", headers=asks)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        evil_preflight = await http.options(f"{api}/feeds", headers={
            "Origin": EVIL, "Access-Control-Request-Method": "GET"})
        assert evil_preflight.status_code == 403
        socket_io = f"http://127.0.0.1:{app.crypto_port}/socket.io/"
        params = {"EIO": "4", "transport": "polling"}
        assert (await http.get(socket_io, params=params, headers={"Origin": EVIL})).status_code == 400
        handshake = await http.get(socket_io, params=params, headers={"Origin": ALLOWED})
        assert handshake.status_code == 200 and handshake.headers["access-control-allow-origin"] == ALLOWED


def test_socket_io_takes_cors_origins_unless_its_own_setting_is_given() -> None:
    assert crypto_origins(load_settings({"cors_origins": [ALLOWED]})) == [ALLOWED]
    assert crypto_origins(load_settings({})) == ["*"]
    assert crypto_origins(load_settings({"cors_origins": [ALLOWED], "crypto_cors_origins": ["*"]})) == ["*"]
