"""Who may use the pythd API: the publisher a connection speaks for, and which browser pages may connect.

Which publisher a connection is comes from its handshake (:class:`Handshake`):
without configured publishers every connection is pythd's one local publisher,
or the key it presents; with them, a key must be configured and its secret
must match. Browsers are refused unless their page's origin is allowed
(:func:`rpc_origin_policy`, applied by the transport), since any web page could otherwise publish through a
pricefeed running on its visitor's machine.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

from ..accounts import DEFAULT_PUBLISHER, parse_key
from ..contracts import Handshake
from ..policy import OriginPolicy, normalise_origin


def credential(handshake: Handshake, name: str) -> str | None:
    """``?publisher=`` / ``X-Publisher-Key`` and ``?secret=`` / ``X-Publisher-Secret``."""
    header = {"publisher": "x-publisher-key", "secret": "x-publisher-secret"}[name]
    return handshake.query.get(name) or handshake.headers.get(header) or None


class Refused(Exception):
    """The handshake names a publisher it cannot be; the connection is closed with this reason."""


def identify(handshake: Handshake, publishers: Mapping[str, str | None]) -> str | None:
    """The publisher key a connection speaks for, or None for a read-only connection.

    Without configured ``publishers`` a connection is the one local publisher (as
    pythd is), or the key it presents. With them, the key must be configured and
    its secret, if it has one, must match; a connection without a key may read.
    """
    key = credential(handshake, "publisher")
    if key is not None:
        try:
            parse_key(key)
        except ValueError as exc:
            raise Refused(f"bad publisher key: {exc}") from None
    if not publishers:
        return key or DEFAULT_PUBLISHER
    if key is None:
        return None
    if key not in publishers:
        raise Refused(f"unknown publisher {key}")
    secret = publishers[key]
    presented = credential(handshake, "secret") or ""
    if secret is not None and not hmac.compare_digest(presented.encode(), secret.encode()):
        raise Refused(f"wrong or missing secret for publisher {key}")
    return key


def rpc_origin_policy(allowed: Collection[str]) -> OriginPolicy:
    """Which browser pages may use the API: none unless listed (``--rpc-origins``; ``*`` allows every origin).

    Publishing software sends no ``Origin``; a browser always does, for the page that opened the socket. A
    page on any site could otherwise publish through a pricefeed on the same machine.
    """
    if "*" in allowed:
        return OriginPolicy(None, setting="--rpc-origins")
    return OriginPolicy(frozenset(normalise_origin(o) for o in allowed), setting="--rpc-origins")


def origin_allowed(origin: str | None, allowed: Collection[str]) -> bool:
    """Whether a handshake with this ``Origin`` header may use the API (see :func:`rpc_origin_policy`)."""
    return rpc_origin_policy(allowed).allows(origin)
