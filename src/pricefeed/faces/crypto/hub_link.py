"""The one place the crypto face touches the hub: each pass's accepted updates, and the snapshot it reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ...hub import Hub
from ...model import Feed, FeedId, PriceUpdate


class HubLink:
    """What the face needs of the hub, and nothing more, so re-pointing it at another hub is one class."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def on_updates(self, callback: Callable[[list[PriceUpdate]], None]) -> None:
        """Call ``callback`` with the updates of every pass the hub accepted."""
        self._hub.add_listener(callback)

    def feeds(self) -> Mapping[FeedId, Feed]:
        return self._hub.feeds

    def latest(self) -> Mapping[FeedId, PriceUpdate]:
        return self._hub.latest

    def is_stale(self, feed_id: FeedId) -> bool:
        return self._hub.status_of(feed_id) == "stale"

    def age_s(self, feed_id: FeedId) -> float | None:
        """Seconds since the hub last heard of this feed (a repeat of the same price counts); None if never."""
        return self._hub.last_seen_age(feed_id)
