"""What the pythd API shows of pricefeed: every feed as a product with one price account.

Local products (the oracle's) show their price account exactly as the oracle
program keeps it: aggregate, EMAs, slots and each publisher's quote. Feeds
from upstreams (Hermes, the simulated market) show their latest price; they
have no publisher components here. Result objects keep pythd's key order.
"""

from __future__ import annotations

from typing import Any

from ..accounts import feed_id_of, price_account_of, product_account_of
from ..hub import Hub
from ..model import Feed, FeedId, Status
from ..sources.publishers import LocalOracle, LocalProduct

PRICE_TYPE = "price"


class Directory:
    """Account keys to feeds and back, and the JSON objects of products and price accounts."""

    def __init__(self, hub: Hub, oracle: LocalOracle | None) -> None:
        self.hub = hub
        self.oracle = oracle
        self._product_to_feed: dict[str, FeedId] = {}
        self._indexed_feeds = -1

    # -- lookups --------------------------------------------------------------

    def local(self, price_account: str) -> LocalProduct | None:
        return None if self.oracle is None else self.oracle.products.get(price_account)

    def feed_of_price_account(self, price_account: str) -> Feed | None:
        """The feed of a (well-formed) price account, or None if there is none."""
        return self.hub.feeds.get(feed_id_of(price_account))

    def feed_of_product_account(self, product_account: str) -> Feed | None:
        if self._indexed_feeds != len(self.hub.feeds):  # feeds are only ever added, so a count change is new ones
            self._product_to_feed = {product_account_of(price_account_of(f)): f for f in self.hub.feeds}
            self._indexed_feeds = len(self.hub.feeds)
        feed_id = self._product_to_feed.get(product_account)
        return None if feed_id is None else self.hub.feeds.get(feed_id)

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
        latest = self.hub.latest.get(feed.id)
        status = Status.UNKNOWN if latest is None or self.hub.is_stale(feed.id) else latest.status
        price = 0 if latest is None else latest.price
        conf = 0 if latest is None else latest.conf
        slot = 0 if latest is None or latest.slot is None else latest.slot
        # An upstream tells only its latest price: it stands in for the previous one too.
        return {
            "account": price_account, "price_type": PRICE_TYPE, "price_exponent": feed.expo,
            "status": str(status), "price": price, "conf": conf,
            "twap": 0 if latest is None else latest.ema_price, "twac": 0 if latest is None else latest.ema_conf,
            "valid_slot": slot, "pub_slot": slot, "prev_slot": slot, "prev_price": price, "prev_conf": conf,
            "publisher_accounts": [],
        }

    def notify_result(self, feed: Feed, price_account: str) -> dict[str, Any]:
        """The ``result`` of a ``notify_price`` (pythd's keys, with ``twap``, ``twac`` and ``num_qt``)."""
        local = self.local(price_account)
        if local is not None:
            return local_notify_result(local)
        account = self.price_account(feed, price_account)
        return {"price": account["price"], "conf": account["conf"], "twap": account["twap"],
                "twac": account["twac"], "status": account["status"], "num_qt": 0,
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
