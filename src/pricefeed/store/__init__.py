"""Where feeds and last prices are kept across restarts."""

from .base import AnalyticsStore, Store
from .sqlite import SqliteStore
from .writer import StoreWriter

__all__ = ["AnalyticsStore", "SqliteStore", "Store", "StoreWriter"]
