"""Seed 002's crypto price service: Socket.IO ``crypto-prices`` on its own listener, ``/health`` and a test page."""

from .service import CryptoService

__all__ = ["CryptoService"]
