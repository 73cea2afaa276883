"""The builder (seed 003's ``PythLazerClientBuilder``): sensible defaults, each changeable, then ``build()``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from ..resilience import Backoff
from .client import Client
from .dedup import DEDUP_CACHE_SIZE, DEDUP_TTL_S, TtlCache
from .protocols import create_protocol
from .protocols.base import ProtocolAdapter
from .protocols.lazer import DEFAULT_ENDPOINTS, AuthForm

DEFAULT_NUM_CONNECTIONS = 4
DEFAULT_TIMEOUT_S = 5.0
CHANNEL_CAPACITY = 1000


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff between reconnections; the defaults are the Rust client's (the ``backoff`` crate's):
    0.5 s, x1.5, +-50 % jitter, at most 60 s, retrying forever."""

    initial_s: float = 0.5
    multiplier: float = 1.5
    max_s: float = 60.0
    randomization: float = 0.5


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class ClientBuilder:
    """``ClientBuilder(token).with_num_connections(2).build()``; defaults: Lazer's public endpoints, 4 connections,
    5 s timeout, a channel of 1000 messages, de-duplication over 100 000 keys for 10 s."""

    def __init__(self, access_token: str | None = None) -> None:
        self._token = access_token
        self._endpoints: list[str] = list(DEFAULT_ENDPOINTS)
        self._protocol: str | ProtocolAdapter = "lazer"
        self._auth: AuthForm = "header"
        self._num_connections = DEFAULT_NUM_CONNECTIONS
        self._backoff = BackoffPolicy()
        self._timeout_s = DEFAULT_TIMEOUT_S
        self._channel_capacity = CHANNEL_CAPACITY
        self._dedup = (DEDUP_CACHE_SIZE, DEDUP_TTL_S)

    def with_endpoints(self, endpoints: Sequence[str]) -> ClientBuilder:
        self._endpoints = list(endpoints)
        return self

    def with_protocol(self, protocol: str | ProtocolAdapter) -> ClientBuilder:
        """``lazer`` (the default), ``seed000``, ``hermes_ws`` or ``hermes_sse``, or an adapter of your own."""
        self._protocol = protocol
        return self

    def with_auth(self, form: AuthForm) -> ClientBuilder:
        """How Lazer gets the token: ``header`` (Authorization: Bearer, the default), ``query`` (?ACCESS_TOKEN=)
        or ``subprotocol`` (Sec-WebSocket-Protocol: pyth-lazer-auth, <token>)."""
        self._auth = form
        return self

    def with_num_connections(self, num_connections: int) -> ClientBuilder:
        self._num_connections = num_connections
        return self

    def with_backoff(self, backoff: BackoffPolicy) -> ClientBuilder:
        self._backoff = backoff
        return self

    def with_timeout(self, timeout: float | timedelta) -> ClientBuilder:
        """Silence (no message, heartbeat or pong) after which a connection is dead and replaced."""
        self._timeout_s = _seconds(timeout)
        return self

    def with_channel_capacity(self, channel_capacity: int) -> ClientBuilder:
        self._channel_capacity = channel_capacity
        return self

    def with_dedup(self, capacity: int = DEDUP_CACHE_SIZE, ttl: float | timedelta = DEDUP_TTL_S) -> ClientBuilder:
        self._dedup = (capacity, _seconds(ttl))
        return self

    def build(self) -> Client:
        if not self._endpoints:
            raise ValueError("At least one endpoint must be provided")
        if self._num_connections < 1:
            raise ValueError("the number of connections must be at least 1")
        if self._timeout_s <= 0:
            raise ValueError("the timeout must be positive")
        if self._channel_capacity < 1:
            raise ValueError("the channel capacity must be at least 1")
        policy = self._backoff
        backoff = Backoff(policy.initial_s, policy.multiplier, policy.max_s, policy.randomization,
                          stable_after_s=max(10.0, self._timeout_s + 1.0))  # the Rust client's reset rule
        protocol = self._protocol if isinstance(self._protocol, ProtocolAdapter) else \
            create_protocol(self._protocol, self._token, self._auth)
        return Client(self._endpoints, protocol, self._num_connections, backoff, self._timeout_s,
                      self._channel_capacity, TtlCache(*self._dedup))
