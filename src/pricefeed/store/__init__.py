"""Where feeds and last prices are kept across restarts."""

from .base import Store
from .sqlite import SqliteStore
from .writer import StoreWriter

__all__ = ["SqliteStore", "Store", "StoreWriter"]
