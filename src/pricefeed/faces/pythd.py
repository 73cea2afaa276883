"""What the pythd API shows of pricefeed: every feed as a product with one price account.

Local products (the oracle's) show their price account exactly as the oracle
program keeps it: aggregate, EMAs, slots and each publisher's quote. A feed
from an upstream (Hermes, the simulated market) shows as a price account with
one publisher, the upstream itself, whose quote is the latest price: one
trading quote aggregates to itself, so the aggregate is that price. Its slots
are read from the one slot clock by publish time (see
:meth:`Directory.upstream_price_account`). Result objects keep pythd's key order.
"""

from __future__ import annotations

from typing import Any

from ..accounts import feed_id_of, price_account_of, product_account_of, upstream_publisher_key
from ..hub import Hub
from ..model import Feed, FeedId, Status
from ..products import ORACLE_SOURCE, LocalProduct, Oracle
from ..slots import SlotClock

PRICE_TYPE = "price"
_US = 1_000_000


class Directory:
    """Account keys to feeds and back, and the JSON objects of products and price accounts."""

    def __init__(self, hub: Hub, oracle: Oracle | None, slot_clock: SlotClock | None = None) -> None:
        self.hub = hub
        self.oracle = oracle
        self.slot_clock = slot_clock or (oracle.slot_clock if oracle is not None else SlotClock())
        self._product_to_feed: dict[str, FeedId] = {}
        self._indexed_feeds = -1

    # -- lookups --------------------------------------------------------------

    def local(self, price_account: str) -> LocalProduct | None:
        return None if self.oracle is None else self.oracle.products.get(price_account)

    def listed(self, feed: Feed) -> bool:
        """False for a local product no longer in the products file (the hub keeps every feed it saw)."""
        return feed.source != ORACLE_SOURCE or self.local(price_account_of(feed.id)) is not None

    def feeds(self) -> list[Feed]:
        """Every feed the API lists, in the hub's order."""
        return [feed for feed in list(self.hub.feeds.values()) if self.listed(feed)]

    def feed_of_price_account(self, price_account: str) -> Feed | None:
        """The feed of a (well-formed) price account, or None if there is none."""
        feed = self.hub.feeds.get(feed_id_of(price_account))
        return feed if feed is not None and self.listed(feed) else None

    def feed_of_product_account(self, product_account: str) -> Feed | None:
        if self._indexed_feeds != len(self.hub.feeds):  # feeds are only ever added, so a count change is new ones
            self._product_to_feed = {product_account_of(price_account_of(f)): f for f in self.hub.feeds}
            self._indexed_feeds = len(self.hub.feeds)
        feed_id = self._product_to_feed.get(product_account)
        feed = None if feed_id is None else self.hub.feeds.get(feed_id)
        return feed if feed is not None and self.listed(feed) else None

    # -- result objects ---------------------------------------------------------

    def product_list_entry(self, feed: Feed) -> dict[str, Any]:
        """One ``get_product_list`` entry (seed 001's key order)."""
        price_account = price_account_of(feed.id)
        return {
            "account": product_account_of(price_account),
            "attr_dict": attr_dict(feed),
            "price": [{"account": price_account, "price_exponent": feed.expo, "price_type": PRICE_TYPE}],
        }

    def product(self, feed: Feed) -> dict[str, Any]:
        """One ``get_product`` / ``get_all_products`` object."""
        price_account = price_account_of(feed.id)
        return {
            "account": product_account_of(price_account),
            "attr_dict": attr_dict(feed),
            "price_accounts": [self.price_account(feed, price_account)],
        }

    def price_account(self, feed: Feed, price_account: str) -> dict[str, Any]:
        local = self.local(price_account)
        if local is not None:
            return local_price_account(local)
        return self.upstream_price_account(feed, price_account)

    def upstream_price_account(self, feed: Feed, price_account: str) -> dict[str, Any]:
        """An upstream feed as an account with one publisher, the upstream, quoting its latest price.

        ``pub_slot`` is the slot of the price's publish time, ``valid_slot`` the slot before it (the
        upstream aggregates every slot), the quote is from ``valid_slot`` as an on-chain quote is a slot
        older than the aggregate it makes, and ``prev_slot`` is the slot of the previous publish time.
        An upstream tells only its latest price, so it also stands for ``prev_price``/``prev_conf``.
        A stale feed is ``unknown``: its quote no longer votes.
        """
        latest = self.hub.latest.get(feed.id)
        if latest is None:
            return {"account": price_account, "price_type": PRICE_TYPE, "price_exponent": feed.expo,
                    "status": str(Status.UNKNOWN), "price": 0, "conf": 0, "twap": 0, "twac": 0,
                    "valid_slot": 0, "pub_slot": 0, "prev_slot": 0, "prev_price": 0, "prev_conf": 0,
                    "publisher_accounts": []}
        slot_at = self.slot_clock.slot_at
        pub_slot = slot_at(latest.publish_time_us / _US)
        valid_slot = pub_slot - 1
        prev_time = latest.prev_publish_time_us
        prev_slot = valid_slot if prev_time is None else min(slot_at(prev_time / _US), valid_slot)
        status = Status.UNKNOWN if self.hub.is_stale(feed.id) else latest.status
        return {
            "account": price_account, "price_type": PRICE_TYPE, "price_exponent": feed.expo,
            "status": str(status), "price": latest.price, "conf": latest.conf,
            "twap": latest.ema_price, "twac": latest.ema_conf,
            "valid_slot": valid_slot, "pub_slot": pub_slot,
            "prev_slot": prev_slot, "prev_price": latest.price, "prev_conf": latest.conf,
            "publisher_accounts": [{"account": upstream_publisher_key(feed.source), "status": str(latest.status),
                                    "price": latest.price, "conf": latest.conf, "slot": valid_slot}],
        }

    def notify_result(self, feed: Feed, price_account: str) -> dict[str, Any]:
        """The ``result`` of a ``notify_price`` (pythd's keys, with ``twap``, ``twac`` and ``num_qt``)."""
        local = self.local(price_account)
        if local is not None:
            return local_notify_result(local)
        account = self.upstream_price_account(feed, price_account)
        return {"price": account["price"], "conf": account["conf"], "twap": account["twap"],
                "twac": account["twac"], "status": account["status"],
                "num_qt": 1 if account["status"] == Status.TRADING else 0,
                "valid_slot": account["valid_slot"], "pub_slot": account["pub_slot"]}


def attr_dict(feed: Feed) -> dict[str, str]:
    """pythd's ``attr_dict``: the symbol first, then the feed's attributes; no empty keys or values."""
    attrs = {"symbol": feed.symbol}
    attrs.update((k, v) for k, v in feed.attributes.items() if k and v and k != "symbol")
    return attrs


def local_price_account(product: LocalProduct) -> dict[str, Any]:
    s = product.state
    return {
        "account": product.price_account, "price_type": PRICE_TYPE, "price_exponent": s.expo,
        "status": str(s.status), "price": s.price, "conf": s.conf, "twap": s.twap.val, "twac": s.twac.val,
        "valid_slot": s.valid_slot, "pub_slot": s.pub_slot,
        "prev_slot": s.prev_slot, "prev_price": s.prev_price, "prev_conf": s.prev_conf,
        # The snapshot the last aggregation used (comp.agg), as pythd shows it, not the newest quotes.
        "publisher_accounts": [
            {"account": c.publisher, "status": str(c.agg.status), "price": c.agg.price, "conf": c.agg.conf,
             "slot": c.agg.pub_slot}
            for c in s.components.values()],
    }


def local_notify_result(product: LocalProduct) -> dict[str, Any]:
    s = product.state
    return {"price": s.price, "conf": s.conf, "twap": s.twap.val, "twac": s.twac.val, "status": str(s.status),
            "num_qt": s.num_qt, "valid_slot": s.valid_slot, "pub_slot": s.pub_slot}
