"""Where a Lazer client puts its token (reference/lazer.md section 2): any of the three forms is accepted."""

from __future__ import annotations

from ...contracts import Handshake

AUTH_SUBPROTOCOL = "pyth-lazer-auth"
"""Offered as ``Sec-WebSocket-Protocol: pyth-lazer-auth, <token>``; the server echoes only this name."""
ACCESS_TOKEN_QUERY = "ACCESS_TOKEN"


def lazer_token(handshake: Handshake) -> str | None:
    """The token of a handshake: ``Authorization: Bearer <token>`` (Rust, Node, Python), ``?ACCESS_TOKEN=<token>``
    (browsers with SDK 6 and older) or the ``pyth-lazer-auth`` subprotocol (SDK 7); None if it carries none."""
    authorization = handshake.headers.get("authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    token = handshake.query.get(ACCESS_TOKEN_QUERY)
    if token:
        return token
    offered = [p.strip() for p in handshake.headers.get("sec-websocket-protocol", "").split(",")]
    if AUTH_SUBPROTOCOL in offered:
        rest = [p for p in offered if p and p != AUTH_SUBPROTOCOL]
        if rest:
            return rest[0]
    return None
