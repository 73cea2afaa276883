"""One connection to Kite's ticker, held until cancelled: connect, subscribe, read, reconnect.

It subscribes (and sets the mode of) the instruments its owner wants, and
follows that set while connected; after a reconnect it subscribes them all
again, as Kite forgets them. A connection that brings nothing (not even the
1-byte heartbeat Kite sends every second or so when there is no tick) for the
silence timeout is dead and replaced. Reconnects wait with the shared jittered
:class:`~pricefeed.resilience.Backoff`. The API key and access token travel
in the URL's query, as Kite wants, and are never logged.

The loop here is deliberately simple: the shared ``ReconnectingConnection`` of
``resilience.py`` (merged from another branch) should run
:meth:`KiteTicker._connect_and_run` instead of :meth:`KiteTicker.run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ... import __version__
from ...resilience import Backoff
from ..http import describe_error, redact_url
from .wire import (
    KiteProtocolError,
    Tick,
    is_heartbeat,
    mode_message,
    parse_frame,
    parse_text,
    subscribe_message,
    unsubscribe_message,
)

log = logging.getLogger(__name__)
_protocol_log = logging.getLogger(__name__ + ".protocol")
_protocol_log.setLevel(logging.WARNING)  # websockets logs the request line, credentials and all, at DEBUG

MAX_INSTRUMENTS = 3000
"""Kite streams at most 3000 instruments on one connection."""


class KiteSilence(Exception):
    """Nothing came for the silence timeout."""


def ticker_url(url: str, api_key: str, access_token: str) -> str:
    """Kite's URL with ``api_key`` and ``access_token`` in the query (they authenticate the handshake)."""
    parts = urlsplit(url)
    query = "&".join(filter(None, (parts.query, urlencode({"api_key": api_key, "access_token": access_token}))))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class KiteTicker:
    def __init__(self, url: str, api_key: str, access_token: str, *, mode: str,
                 wanted: Callable[[], set[int]], on_ticks: Callable[[list[Tick], int], None],
                 on_state: Callable[[bool, str | None], None], silence_timeout_s: float = 10.0,
                 demand_poll_s: float = 1.0, backoff: Backoff | None = None) -> None:
        self._url = ticker_url(url, api_key, access_token)
        self._secrets = [s for s in (api_key, access_token) if s]
        self.display_url = redact_url(url)
        self.mode = mode
        self.wanted = wanted
        self.on_ticks = on_ticks
        self.on_state = on_state
        self.silence_timeout_s = silence_timeout_s
        self.demand_poll_s = demand_poll_s
        self.backoff = backoff or Backoff()
        self.subscribed: set[int] = set()
        self.connections = 0
        self.bad_frames = 0
        self.last_error: str | None = None

    def scrub(self, text: str) -> str:
        """``text`` without the API key and access token (an error may quote the URL)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def run(self) -> None:
        """Connect again and again until cancelled."""
        while True:
            started = time.monotonic()
            try:
                reason = await self._connect_and_run()
            except (OSError, WebSocketException, KiteSilence, TimeoutError) as exc:
                reason = self.scrub(describe_error(exc))
            self.last_error = reason
            self.on_state(False, reason)
            self.backoff.connection_ended(time.monotonic() - started)
            delay = self.backoff.next_delay()
            log.warning("Kite ticker %s: %s; reconnecting in %.1f s", self.display_url, reason, delay)
            await asyncio.sleep(delay)

    async def _connect_and_run(self) -> str:
        """One connection: subscribe what is wanted and read until it ends; returns why it ended."""
        async with connect(self._url, additional_headers={"X-Kite-Version": "3"}, ping_interval=None,
                           user_agent_header=f"pricefeed/{__version__}", open_timeout=self.silence_timeout_s,
                           close_timeout=2, max_size=4 * 1024 * 1024, logger=_protocol_log) as ws:
            self.connections += 1
            self.subscribed = set()
            log.info("Kite ticker connected to %s", self.display_url)
            self.on_state(True, None)
            await self._sync(ws)
            await self._read(ws)
        code = ws.close_code
        return f"connection closed by Kite ({code if code is not None else 'no close frame'})"

    async def _read(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        heard = synced = loop.time()
        while True:
            now = loop.time()
            if now - synced >= self.demand_poll_s:
                await self._sync(ws)
                synced = now
            silent_for = now - heard
            if silent_for >= self.silence_timeout_s:
                raise KiteSilence(f"nothing from Kite for {silent_for:.1f} s (no tick, no heartbeat)")
            try:
                async with asyncio.timeout(min(self.demand_poll_s, self.silence_timeout_s - silent_for)):
                    message = await ws.recv()
            except TimeoutError:
                continue
            heard = loop.time()
            if isinstance(message, bytes):
                self._on_binary(message)
            else:
                self._on_text(message)

    def _on_binary(self, frame: bytes) -> None:
        if is_heartbeat(frame):
            return
        try:
            ticks = parse_frame(frame)
        except KiteProtocolError as exc:
            self.bad_frames += 1
            log.warning("Kite ticker: dropping a malformed frame of %d bytes: %s", len(frame), exc)
            return
        if ticks:
            self.on_ticks(ticks, time.time_ns() // 1000)

    def _on_text(self, text: str) -> None:
        try:
            message = parse_text(text)
        except KiteProtocolError as exc:
            log.warning("Kite ticker: %s", exc)
            return
        if message.type == "error":
            self.last_error = f"Kite error: {message.data}"
            log.warning("Kite ticker error: %s", message.data)
        elif message.type == "order":
            log.info("Kite order update: %s", message.data)
        else:
            log.info("Kite ticker %s: %s", message.type, message.data)

    async def _sync(self, ws: ClientConnection) -> None:
        """Subscribe what is newly wanted (then set its mode) and unsubscribe what is not wanted any more."""
        wanted = self.wanted()
        if len(wanted) > MAX_INSTRUMENTS:
            log.warning("Kite ticker: %d instruments wanted, streaming the first %d", len(wanted), MAX_INSTRUMENTS)
            wanted = set(sorted(wanted)[:MAX_INSTRUMENTS])
        new, gone = sorted(wanted - self.subscribed), sorted(self.subscribed - wanted)
        if new:
            await ws.send(subscribe_message(new))
            await ws.send(mode_message(self.mode, new))
        if gone:
            await ws.send(unsubscribe_message(gone))
        self.subscribed = wanted
