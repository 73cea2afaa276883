"""Socket.IO connection state recovery on crypto-prices, with socket.io-client v4 in Node: the transport is lost,
the client reconnects by itself, ``socket.recovered`` is true and not one ``crypto-prices`` emission is missed or
repeated (each carries its offset, and the offsets the client saw are consecutive)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..service import ServiceProcess

JS = Path(__file__).resolve().parents[1] / "js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "socket.io-client").is_dir(),
    reason="needs Node.js and `npm ci --prefix tests/js` (scripts/test does both when npm is present)")


async def node(script: str, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec("node", str(JS / script), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def test_a_lost_transport_is_recovered_with_every_emission(tmp_path: Path) -> None:
    service = await ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.1",
                                   "--crypto-recovery", "true").start()
    try:
        result = await node("crypto_recovery.mjs", service.crypto_url, "5", "15")
        status = (await service.get("/status")).json()["crypto"]
    finally:
        await service.stop()
    assert [c["recovered"] for c in result["connects"]] == [False, True]
    assert result["connects"][1]["at"] == 5, "reconnected after the fifth array, before any other"
    offsets = [int(offset) for offset in result["offsets"]]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), f"missed or repeated: {offsets}"
    assert status["recovered"] == 1


async def test_without_recovery_events_carry_no_offset_and_a_reconnect_is_a_new_session(tmp_path: Path) -> None:
    service = await ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.1").start()
    try:
        result = await node("crypto_recovery.mjs", service.crypto_url, "3", "3")
    finally:
        await service.stop()
    assert result["offsets"] == [None] * 6
    assert [c["recovered"] for c in result["connects"]] == [False, False]
