"""pricefeed's resilient client for Pyth Lazer, seed 000 and Hermes (``/ws`` and SSE), after seed 003.

    client = (ClientBuilder(token).with_endpoints(urls).with_num_connections(4).build())
    async with client:
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1, 2], channel="fixed_rate@200ms"))
        async for message in client:
            ...

It imports nothing of the server, so ``pip install pricefeed`` is enough to use it.
"""

from __future__ import annotations

from .builder import BackoffPolicy, ClientBuilder
from .client import Client, Receiver
from .connection import ConnectionState, ConnectionStats
from .messages import (
    Confirmation,
    IgnoredInvalidFeeds,
    LazerFeed,
    Message,
    PriceUpdate,
    ServerError,
    SignedPayload,
    StreamUpdated,
    Subscribed,
    SubscribedWithInvalidFeedIdsIgnored,
    SubscriptionError,
    Unsubscribed,
)
from .protocols import PROTOCOLS, ProtocolAdapter, create_protocol, guess_protocol
from .requests import CHANNELS, PROPERTIES, FeedSubscription, LazerSubscription, Subscription

__all__ = [
    "CHANNELS", "PROPERTIES", "PROTOCOLS", "BackoffPolicy", "Client", "ClientBuilder", "Confirmation",
    "ConnectionState", "ConnectionStats", "FeedSubscription", "IgnoredInvalidFeeds", "LazerFeed",
    "LazerSubscription", "Message", "PriceUpdate", "ProtocolAdapter", "Receiver", "ServerError", "SignedPayload",
    "StreamUpdated", "Subscribed", "SubscribedWithInvalidFeedIdsIgnored", "Subscription", "SubscriptionError",
    "Unsubscribed", "create_protocol", "guess_protocol",
]
