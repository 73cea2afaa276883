"""URLs safe to log: a token may hide in the credentials or the query (Lazer's ``?ACCESS_TOKEN=``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """A URL without credentials or query: safe for logs, ``stats()`` and ``/status``."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
