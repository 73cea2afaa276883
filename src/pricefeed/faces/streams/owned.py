"""What /ws/alerts and /ws/portfolio share: a connection belongs to one ``owner`` (a client-chosen id, given as
``?owner=`` in the URL, a ``pricefeed_owner`` cookie, or ``"owner"`` in the first message that names one), and
carries that owner's data. The cookie lets a web page run the seed's examples unchanged: a frontend on
``localhost:3000`` sets it, and the browser sends it with the handshake to ``localhost:8081``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

import orjson

from ...alerts import check_owner
from ...contracts import Codec, Peer, Subscriber
from ...hub import Hub
from ...model import FeedId
from .codecs import decimal_number
from .messages import now_iso
from .subscription import Subscription


class Host(Protocol):
    """What an owned channel needs of its stream session."""

    hub: Hub
    peer: Peer

    @property
    def subscriptions(self) -> Mapping[FeedId, Subscription]: ...

    def symbol_of(self, feed_id: FeedId) -> str: ...

    def error(self, text: str) -> None: ...

    def resolve(self, message: dict[str, Any], command: str) -> tuple[FeedId | None, str]: ...

    def restart(self, subscription: Subscription) -> None: ...

    def lane(self, codec: Codec) -> Subscriber: ...

    def final_lane(self, codec: Codec) -> Subscriber: ...


OWNER_COOKIE = "pricefeed_owner"


def _cookie(header: str, name: str) -> str | None:
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(name)
    return None if morsel is None else morsel.value


class OwnedChannel:
    def __init__(self, session: Host) -> None:
        self.session = session
        handshake = session.peer.handshake
        raw = handshake.query.get("owner") or _cookie(handshake.headers.get("cookie", ""), OWNER_COOKIE)
        self.owner: str | None = None
        if raw is not None:
            try:
                self.owner = check_owner(raw)
            except ValueError:
                self.owner = None

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {}

    def start(self, subscription: Subscription) -> None:
        """Send what the owner has on the subscription's symbol, and subscribe to what comes."""

    def claim(self, message: dict[str, Any]) -> bool:
        """Take the message's ``owner`` as the connection's (False after sending the error)."""
        raw = message.get("owner")
        if raw is None:
            return True
        try:
            owner = check_owner(raw)
        except ValueError as exc:
            self.session.error(str(exc))
            return False
        if self.owner is None:
            self.owner = owner
            for subscription in list(self.session.subscriptions.values()):
                self.session.restart(subscription)  # now the owner is known, its data comes
        elif owner != self.owner:
            self.session.error(f"this connection belongs to owner {self.owner!r}: open another connection for "
                               f"{owner!r}")
            return False
        return True

    def owner_or_error(self, message: dict[str, Any], command: str) -> str | None:
        if not self.claim(message):
            return None
        if self.owner is None:
            self.session.error(f"{command} needs an \"owner\" (in the message, or ?owner= in the URL)")
        return self.owner

    def reply(self, message: dict[str, Any]) -> None:
        self.session.peer.send(orjson.dumps({**message, "timestamp": now_iso()}, default=decimal_number))
