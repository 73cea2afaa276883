"""One adapter per protocol the client speaks; :func:`create_protocol` picks one by name or by URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import ProtocolAdapter, ProtocolError
from .hermes import HermesSseProtocol, HermesWsProtocol
from .lazer import AuthForm, LazerProtocol
from .seed000 import Seed000Protocol

PROTOCOLS = ("lazer", "seed000", "hermes_ws", "hermes_sse")

__all__ = ["PROTOCOLS", "HermesSseProtocol", "HermesWsProtocol", "LazerProtocol", "ProtocolAdapter",
           "ProtocolError", "Seed000Protocol", "create_protocol", "guess_protocol"]


def guess_protocol(url: str) -> str:
    """The protocol an endpoint URL most likely speaks: ``http(s)`` is Hermes' event stream, ``/v1/stream`` Lazer,
    ``/ws`` Hermes' WebSocket, any other WebSocket URL seed 000."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if parts.scheme in ("http", "https"):
        return "hermes_sse"
    if path.endswith("/v1/stream"):
        return "lazer"
    if path.endswith("/ws"):
        return "hermes_ws"
    return "seed000"


def create_protocol(name: str, token: str | None = None, auth: AuthForm = "header") -> ProtocolAdapter:
    if name == "lazer":
        return LazerProtocol(token, auth)
    if name == "seed000":
        return Seed000Protocol(token)
    if name == "hermes_ws":
        return HermesWsProtocol(token)
    if name == "hermes_sse":
        return HermesSseProtocol(token)
    raise ValueError(f"unknown protocol {name!r}: one of {', '.join(PROTOCOLS)}")
