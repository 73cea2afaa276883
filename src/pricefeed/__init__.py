"""pricefeed: a real-time market price gateway."""

__version__ = "0.1.0"
