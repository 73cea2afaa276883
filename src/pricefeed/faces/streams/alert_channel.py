"""/ws/alerts: an owner's alerts over the seed-004 protocol.

A connection belongs to one ``owner`` (see :mod:`.owned`). ``create_alert`` (``symbol``, ``rule``),
``list_alerts`` (optionally of one ``symbol``) and ``delete_alert``
(``alert_id``) manage the owner's alerts; ``subscribe`` to a symbol brings at
once the owner's alerts on it, then a ``data`` message each time one fires.
Whoever subscribes to a symbol (owner or not) also gets each divergence raised or
cleared on its asset (``divergence_alerts``, see :mod:`pricefeed.divergence`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...alerts import AlertBook, AlertEvent, alert_view, alerts_topic
from ...divergence import DivergenceWatch, divergence_topic
from ...model import FeedId, now_us
from .codecs import StreamCodecs, alert_json
from .owned import Host, OwnedChannel
from .subscription import Subscription


class AlertChannel(OwnedChannel):
    def __init__(self, session: Host, book: AlertBook, codecs: StreamCodecs,
                 divergence: DivergenceWatch | None = None) -> None:
        super().__init__(session)
        self.book = book
        self.codec = codecs.alerts
        self.divergence_codec = codecs.divergence
        self.divergence = divergence

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {"create_alert": self._create, "list_alerts": self._list, "delete_alert": self._delete}

    def start(self, subscription: Subscription) -> None:
        """The owner's alerts on the symbol at once, then each firing (not conflated: every one arrives)."""
        owner = self.owner
        self.session.peer.send(self._snapshot(owner or "", subscription.feed_id))
        topics = subscription.topics
        asset = None if self.divergence is None else self.divergence.asset_of(subscription.feed_id)
        if asset is not None:
            topics.append((divergence_topic(asset), self.session.final_lane(self.divergence_codec)))
        if owner is not None:
            topics.append((alerts_topic(owner, subscription.feed_id), self.session.final_lane(self.codec)))
        for topic, lane in topics:
            self.session.hub.subscribe(topic, lane)

    def _snapshot(self, owner: str, feed_id: FeedId) -> bytes:
        event = self.book.event(owner, feed_id, now_us()) if owner else AlertEvent("", feed_id, now_us(), ())
        return self.codec.encode(alerts_topic(owner or "-", feed_id), event)

    def _create(self, message: dict[str, Any]) -> None:
        owner = self.owner_or_error(message, "create_alert")
        if owner is None:
            return
        feed_id, symbol = self.session.resolve(message, "create_alert")
        if feed_id is None:
            return
        try:
            alert = self.book.create(owner, feed_id, message.get("rule"), now_us())
        except ValueError as exc:
            self.session.error(str(exc))
            return
        self.reply({"type": "alert_created", "owner": owner, "alert": alert_json(alert_view(alert), symbol)})

    def _list(self, message: dict[str, Any]) -> None:
        owner = self.owner_or_error(message, "list_alerts")
        if owner is None:
            return
        feed_id = None
        if message.get("symbol") is not None:
            feed_id, _ = self.session.resolve(message, "list_alerts")
            if feed_id is None:
                return
        symbol_of = self.session.symbol_of
        alerts = [alert_json(alert_view(a), symbol_of(a.feed_id)) for a in self.book.of(owner, feed_id)]
        self.reply({"type": "alerts", "owner": owner, "alerts": alerts})

    def _delete(self, message: dict[str, Any]) -> None:
        owner = self.owner_or_error(message, "delete_alert")
        if owner is None:
            return
        alert_id = message.get("alert_id")
        if not isinstance(alert_id, str):
            self.session.error(f"delete_alert needs an \"alert_id\" (a string), got {alert_id!r}")
            return
        if self.book.delete(owner, alert_id) is None:
            self.session.error(f"owner {owner!r} has no alert {alert_id!r}")
            return
        self.reply({"type": "alert_deleted", "owner": owner, "alert_id": alert_id})
