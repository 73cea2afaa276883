"""Access policy, in one place: which browser origins may use a listener.

A browser sends ``Origin`` with every WebSocket handshake and cross-origin
request; a page from an origin that is not allowed is refused (403) by the
transport. Clients that are not browsers send no ``Origin`` and are not
subject to it (as Socket.IO and the seed's CORS setting behave). Decisions are
pure functions of the request, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


def normalise_origin(text: str) -> str:
    """``scheme://host[:port]`` in lower case, without a path or trailing slash; ``ValueError`` if not an origin.

    A default port is dropped (``http://a:80`` is ``http://a``), as browsers send it.
    """
    value = text.strip()
    if value == "null":  # what a browser sends from a file:// page or a sandboxed frame
        return value
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ValueError(f"invalid origin {text!r}: expected scheme://host[:port], e.g. http://localhost:3000")
    scheme = parts.scheme.lower()
    port = parts.port
    default = {"http": 80, "https": 443}[scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """The origins allowed to connect; ``None`` allows every origin."""

    allowed: frozenset[str] | None = None
    setting: str = "CORS_ORIGINS (or --cors-origins)"
    """The setting that lists them, named in a refusal."""

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginPolicy:
        """From a setting's list: empty or ``*`` allows every origin."""
        listed = [o for o in (o.strip() for o in origins) if o]
        if not listed or "*" in listed:
            return cls(None)
        return cls(frozenset(normalise_origin(o) for o in listed))

    @property
    def allows_any(self) -> bool:
        return self.allowed is None

    def allows(self, origin: str | None, host: str | None = None) -> bool:
        """Whether a request with this ``Origin`` header (None: not sent, not a browser) may proceed; a page
        of the server itself (its origin's host is the request's ``Host``) always may."""
        if origin is None or self.allowed is None:
            return True
        try:
            normal = normalise_origin(origin)
        except ValueError:
            return False
        return normal in self.allowed or (host is not None and normal.split("://", 1)[-1] == host.strip().lower())

    def refusal(self, origin: str | None, host: str | None = None) -> str | None:
        """Why a request with this origin is refused (its 403 body), or None if it is allowed."""
        if self.allows(origin, host):
            return None
        return f"origin {origin!r} is not allowed: set {self.setting} to allow it\n"


ANY_ORIGIN = OriginPolicy(None)
