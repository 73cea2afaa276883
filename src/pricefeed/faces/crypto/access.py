"""The access policy on the Socket.IO face: the key comes in the connect packet's ``auth`` payload.

A socket.io-client presents it as ``io(url, {auth: {token: KEY}})``; an
``Authorization: Bearer`` header or a ``?token=`` query on the handshake is
taken too. A refusal is a ``connect_error`` whose ``message`` says why (the
client's ``err.message``); a subscription to a channel whose coins the key
may not see, or past its subscription limit, is refused like any bad
subscribe. Counted by reason and logged once, as on every face.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from socketio.exceptions import ConnectionRefusedError as Refused

from ...metrics import Metrics
from ...policy import AccessPolicy, Admission, Refusal, log_refusal

FACE = "crypto"


def auth_token(auth: object) -> str | None:
    """The key in a connect packet's ``auth`` payload (``{token}``, or ``{key}``/``{apiKey}`` as some clients
    name it)."""
    if isinstance(auth, dict):
        for name in ("token", "key", "apiKey"):
            value = auth.get(name)
            if isinstance(value, str) and value:
                return value
    return None


class SocketIoAccess:
    """Admissions of Socket.IO sessions by sid, let in and released by the policy."""

    def __init__(self, policy: AccessPolicy, metrics: Metrics) -> None:
        self.policy = policy
        self._refusals = metrics.refusals
        self._warned: set[tuple[str, str, str]] = set()
        self._admissions: dict[str, Admission] = {}

    def connect(self, sid: str, environ: Mapping[str, Any], auth: object) -> None:
        """Let a session in, or raise the ``ConnectionRefusedError`` the client sees as ``connect_error``."""
        headers = {name[5:].lower().replace("_", "-"): value for name, value in environ.items()
                   if name.startswith("HTTP_")}
        token = auth_token(auth)
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        client = environ.get("asgi.scope", {}).get("client")
        admitted = self.policy.admit(FACE, headers, query, str(client[0]) if client else None)
        if isinstance(admitted, Refusal):
            message = "crypto: an API key is required: io(url, {auth: {token: KEY}})" \
                if admitted.reason == "missing_key" else admitted.message.strip()
            self._refused(admitted)
            raise Refused(message)
        self._admissions[sid] = admitted

    def disconnect(self, sid: str) -> None:
        admission = self._admissions.pop(sid, None)
        if admission is not None:
            self.policy.release(admission)

    def claim(self, sid: str, feeds: Iterable[str]) -> str | None:
        """None if the session's key may subscribe to ``feeds`` (counted until it disconnects: its channels
        overlap), else why not."""
        admission = self._admissions.get(sid)
        if admission is None or admission.key is None:
            return None
        refusal = self.policy.claim(admission, feeds)
        return None if refusal is None else self._refused(refusal).message

    def _refused(self, refusal: Refusal) -> Refusal:
        self._refusals.labels(FACE, refusal.reason).inc()
        log_refusal(FACE, refusal, self._warned)
        return refusal
