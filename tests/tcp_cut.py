"""A TCP relay a test can cut: the network between a client and the service, which drops every connection
and refuses new ones while cut, as a lost link does (the service keeps running and publishing)."""

from __future__ import annotations

import asyncio
import contextlib


class CuttableLink:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = 0
        self.cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> CuttableLink:
        self._server = await asyncio.start_server(self._relay, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def url(self, template: str, service_port: int) -> str:
        """``template`` (a service URL) pointed at this link instead."""
        return template.replace(f":{service_port}", f":{self.port}")

    async def outage(self, seconds: float) -> None:
        """Drop every connection, refuse new ones for ``seconds``, then carry traffic again."""
        self.cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.sleep(seconds)  # the outage itself, not a wait for data
        self.cut = False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            for w in (writer, up_writer):
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
