"""Solana-style account keys for the pythd API: 32 bytes written in base58.

A Pyth feed's price account is its 32-byte feed id in base58 (the id Hermes
shows in hex). Product accounts and the keys of local products are derived by
hashing, so they are the same on every start and on every machine.
"""

from __future__ import annotations

import hashlib

import base58

from .model import FeedId

KEY_BYTES = 32
_MAX_KEY_CHARS = 44
"""Base58 of 32 bytes is at most 44 characters."""


def encode_key(raw: bytes) -> str:
    """The base58 text of a 32-byte key."""
    return base58.b58encode(raw).decode("ascii")


def parse_key(text: object) -> bytes:
    """The 32 bytes of a base58 key; ``ValueError`` with a message that says what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base58 account key string, got {type(text).__name__}")
    if not text or len(text) > _MAX_KEY_CHARS:
        raise ValueError(f"invalid account key {text[:60]!r}: a base58 key of 32 bytes has 32 to 44 characters")
    try:
        raw = base58.b58decode(text)
    except ValueError:
        raise ValueError(f"invalid account key {text!r}: not a base58 string") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"invalid account key {text!r}: decodes to {len(raw)} bytes, not 32")
    return raw


def derive_key(*parts: str | bytes) -> str:
    """A stable key made from ``parts`` (SHA-256), for accounts that have no key of their own."""
    digest = hashlib.sha256(b"pricefeed")
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(4, "big") + data)  # length-prefixed, so parts never run together
    return encode_key(digest.digest())


def price_account_of(feed_id: FeedId) -> str:
    """The price account of a feed: its 32-byte id in base58."""
    return encode_key(bytes.fromhex(feed_id))


def feed_id_of(price_account: str) -> FeedId:
    """The feed id (64 lowercase hex characters) a price account stands for; ``ValueError`` if malformed."""
    return parse_key(price_account).hex()


def product_account_of(price_account: str) -> str:
    """The product account that holds a price account, derived from it."""
    return derive_key("product", parse_key(price_account))


def local_price_account(symbol: str) -> str:
    """The price account of a local product that the products file gives no key for."""
    return derive_key("price", symbol)


DEFAULT_PUBLISHER = derive_key("publisher", "local")
"""The publisher a connection speaks as when no publisher keys are configured (pythd's own key)."""


def upstream_publisher_key(source: str) -> str:
    """The publisher an upstream feed shows as its one quoter in the pythd API (one key per source)."""
    return derive_key("publisher", "upstream", source)


def parse_publishers(entries: list[str]) -> dict[str, str | None]:
    """``KEY`` or ``KEY:SECRET`` entries (the ``--rpc-publisher`` option) as a map; ``ValueError`` if malformed."""
    result: dict[str, str | None] = {}
    for entry in entries:
        key, sep, secret = entry.partition(":")
        parse_key(key)
        result[key] = secret if sep else None
    return result
