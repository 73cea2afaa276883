"""Real Pyth feeds (ids and attributes as Hermes publishes them), with a typical price level.

The simulated market walks these feeds, and other sources use the ids as the
well-known default set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KnownFeed:
    id: str
    symbol: str
    """Pyth's full symbol, e.g. ``Crypto.BTC/USD``."""
    description: str
    expo: int
    price: float
    """A typical price level, where the simulated walk starts."""
    volatility: float
    """Annualised volatility of the simulated walk."""

    @property
    def asset_type(self) -> str:
        return self.symbol.split(".", 1)[0]

    @property
    def display_symbol(self) -> str:
        return self.symbol.rsplit(".", 1)[-1]

    def attributes(self) -> dict[str, str]:
        """Hermes-style attributes (``/v2/price_feeds``), keys sorted."""
        base, quote = self.display_symbol.split("/")
        attrs = {
            "asset_type": self.asset_type,
            "base": base,
            "description": self.description,
            "display_symbol": self.display_symbol,
            "generic_symbol": base + quote,
            "quote_currency": quote,
            "symbol": self.symbol,
        }
        if self.asset_type == "Crypto":
            attrs["schedule"] = "America/New_York;O,O,O,O,O,O,O;"
        elif self.asset_type == "FX":
            attrs["tenor"] = "Spot"
            attrs["schedule"] = "America/New_York;O,O,O,O,00:00-17:00,C,17:00-24:00;"
        elif self.asset_type == "Equity":
            attrs["country"] = "US"
            attrs["cms_symbol"] = attrs["cqs_symbol"] = attrs["nasdaq_symbol"] = base
            attrs["schedule"] = "America/New_York;0930-1600,0930-1600,0930-1600,0930-1600,0930-1600,C,C;"
        return dict(sorted(attrs.items()))


KNOWN_FEEDS: tuple[KnownFeed, ...] = (
    KnownFeed("e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
              "Crypto.BTC/USD", "BITCOIN / US DOLLAR", -8, 95_000.0, 0.55),
    KnownFeed("ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace",
              "Crypto.ETH/USD", "ETHEREUM / US DOLLAR", -8, 3_300.0, 0.70),
    KnownFeed("ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d",
              "Crypto.SOL/USD", "SOLANA / US DOLLAR", -8, 180.0, 0.90),
    KnownFeed("eaa020c61cc479712813461ce153894a96a6c00b21ed0cfc2798d1f9a9e9c94a",
              "Crypto.USDC/USD", "USD COIN / US DOLLAR", -8, 1.0, 0.01),
    KnownFeed("2b89b9dc8fdf9f34709a5b106b472f0f39bb6ca9ce04b0fd7f2e971688e2e53b",
              "Crypto.USDT/USD", "TETHER / US DOLLAR", -8, 1.0, 0.01),
    KnownFeed("dcef50dd0a4cd2dcc17e45df1676dcb336a11a61c69df7a0299b0150c672d25c",
              "Crypto.DOGE/USD", "DOGECOIN / US DOLLAR", -8, 0.30, 1.00),
    KnownFeed("2f95862b045670cd22bee3114c39763a4a08beeb663b145d283c31d7d1101c4f",
              "Crypto.BNB/USD", "BINANCE COIN / US DOLLAR", -8, 650.0, 0.60),
    KnownFeed("ec5d399846a9209f3fe5881d70aae9268c94339ff9817e8d18ff19fa05eea1c8",
              "Crypto.XRP/USD", "RIPPLE / US DOLLAR", -8, 2.20, 0.90),
    KnownFeed("2a01deaec9e51a579277b34b122399984d0bbf57e2458a7e42fecd2829867a0d",
              "Crypto.ADA/USD", "CARDANO / US DOLLAR", -8, 0.90, 0.90),
    KnownFeed("ca3eed9b267293f6595901c734c7525ce8ef49adafe8284606ceb307afa2ca5b",
              "Crypto.DOT/USD", "POLKADOT / US DOLLAR", -8, 6.0, 0.90),
    KnownFeed("ffd11c5a1cfd42f80afb2df4d9f264c15f956d68153335374ec10722edd70472",
              "Crypto.POL/USD", "POLYGON ECOSYSTEM TOKEN / US DOLLAR", -8, 0.45, 0.95),
    KnownFeed("a995d00bb36a63cef7fd2c287dc105fc8f3d93779f062f09551b0af3e81ec30b",
              "FX.EUR/USD", "EURO / US DOLLAR", -5, 1.08, 0.08),
    KnownFeed("49f6b65cb1de6b10eaf75e7c03ca029c306d0357e91b5311b175084a5ad55688",
              "Equity.US.AAPL/USD", "APPLE INC / US DOLLAR", -5, 230.0, 0.25),
)

FX_USD_INR = KnownFeed("0ac0f9a2886fc2dd708bc66cc2cea359052ce89d324f45d95fadbc6c4fcf1809",
                       "FX.USD/INR", "US DOLLAR / INDIAN RUPEE", -5, 88.0, 0.05)
"""Rupees per dollar: the simulated market walks it beside its NSE equities, so a portfolio of rupee and dollar
positions has a rate to total them in one currency (not in ``KNOWN_FEEDS``: the default feed set stays as
Hermes' crypto and US feeds)."""
