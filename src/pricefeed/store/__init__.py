"""Where feeds and last prices are kept across restarts: SQLite by default, Redis to share them."""

from __future__ import annotations

from ..config import Settings
from .base import AnalyticsStore, Store
from .sqlite import SqliteStore
from .writer import StoreWriter

__all__ = ["AnalyticsStore", "SqliteStore", "Store", "StoreWriter", "create_store"]


def create_store(settings: Settings) -> Store:
    """Redis when ``--redis-url`` or ``REDIS_HOST`` is given, else the SQLite file ``--db``."""
    if not settings.uses_redis:
        return SqliteStore(settings.db)
    from .redis import RedisStore

    return RedisStore.connect(
        url=settings.redis_url.get_secret_value() if settings.redis_url else None, host=settings.redis_host,
        port=settings.redis_port, username=settings.redis_username,
        password=settings.redis_password.get_secret_value() if settings.redis_password else None,
        prefix=settings.redis_prefix)
