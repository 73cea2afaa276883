"""Who may use the pythd API: the publisher a connection speaks for, and which browser pages may connect.

Which publisher a connection is comes from its handshake (:class:`Handshake`):
without configured publishers every connection is pythd's one local publisher,
or the key it presents; with them, a key must be configured and its secret
must match. Browsers are refused unless their page's origin is allowed
(:func:`origin_allowed`), since any web page could otherwise publish through a
pricefeed running on its visitor's machine.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection, Mapping

from ..accounts import DEFAULT_PUBLISHER, parse_key
from ..contracts import Handshake
from .rpc_params import shown

log = logging.getLogger(__name__)

_warned_origins: set[str] = set()
"""Origins whose refusal was logged at warning level (a page may retry in a loop; bounded, origins are free)."""
_MAX_WARNED_ORIGINS = 100


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


def origin_allowed(origin: str | None, allowed: Collection[str]) -> bool:
    """Whether a handshake with this ``Origin`` header may use the API.

    Publishing software sends no ``Origin``; a browser always does, for the page that opened the socket. A
    page on any site could otherwise publish through a pricefeed on the same machine, so a browser origin
    must be on the allow-list (``--rpc-origins``; ``*`` allows every origin).
    """
    if origin is None:
        return True
    return "*" in allowed or _origin_key(origin) in {_origin_key(entry) for entry in allowed}


def _origin_key(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_refusal(handshake: Handshake, allowed: Collection[str]) -> str | None:
    """Why an upgrade request is refused (403) for its ``Origin``, or None to let it in."""
    origin = handshake.headers.get("origin")
    if origin is None or origin_allowed(origin, allowed):
        return None
    first = origin not in _warned_origins and len(_warned_origins) < _MAX_WARNED_ORIGINS
    if first:
        _warned_origins.add(origin)
    log.log(logging.WARNING if first else logging.DEBUG,
            "pythd API: refused a browser connection from origin %s (allow it with --rpc-origins)", shown(origin))
    return f"origin {origin[:200]} may not use this API (pricefeed --rpc-origins lists the allowed ones)"
