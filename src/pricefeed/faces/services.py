"""What faces see of the service: the hub, the price history, health and status, the metrics, the listeners.

Faces get this narrow view, never the application object, so a face cannot
reach into sources, the store or another face.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..alerts import AlertBook
from ..analytics import Analytics
from ..divergence import DivergenceWatch
from ..history import PriceHistory
from ..hub import Hub
from ..metrics import Metrics
from ..policy import ANY_ORIGIN, OPEN_POLICY, AccessPolicy, OriginPolicy
from ..portfolio import PortfolioBook
from ..resume import RecentUpdates
from ..transport.limits import ConnectionLimits


@dataclass(slots=True)
class Services:
    hub: Hub
    history: PriceHistory
    metrics: Metrics
    limits: ConnectionLimits
    """The per-connection limits every socket face starts from (``--max-message-bytes`` and the rest)."""
    health: Callable[[], dict[str, Any]]
    status: Callable[[], dict[str, Any]]
    stopping: Callable[[], bool]
    analytics: Analytics | None = None
    """Market days and candles (the seed-004 stream service's data)."""
    alerts: AlertBook | None = None
    """Every owner's alert rules (the stream service's /ws/alerts and /alerts)."""
    portfolio: PortfolioBook | None = None
    """Every owner's positions (the stream service's /ws/portfolio and /portfolio)."""
    access: AccessPolicy = OPEN_POLICY
    origins: OriginPolicy = ANY_ORIGIN
    """Browser origins allowed on every face (``--cors-origins``; pythd keeps ``--rpc-origins``)."""
    """Keys and per-IP limits, applied by the transports (``policy.py``)."""
    divergence: DivergenceWatch | None = None
    """Where sources carrying the same asset disagree (``/status``, ``/assets``, /ws/alerts)."""
    recent: RecentUpdates = field(default_factory=RecentUpdates)
    """Every recent update by seq per feed: what a reconnecting client missed (lossless resume)."""
