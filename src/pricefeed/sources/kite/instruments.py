"""Kite's instruments CSV (``GET /instruments``): which instrument token a trading symbol has.

Columns: ``instrument_token, exchange_token, tradingsymbol, name, last_price,
expiry, strike, tick_size, lot_size, instrument_type, segment, exchange``.
Each instrument becomes a feed named after ``EXCHANGE:TRADINGSYMBOL`` (its id
does not change when Kite gives a contract a new token).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ...model import Feed
from ..exchange import NSE_SCHEDULE, exchange_feed, exchange_feed_id
from .wire import expo_of


class InstrumentsError(ValueError):
    """The instruments file is not Kite's CSV, or lacks an instrument asked for."""


COLUMNS = ("instrument_token", "tradingsymbol", "instrument_type", "segment", "exchange")


@dataclass(frozen=True, slots=True)
class Instrument:
    token: int
    exchange: str
    trading_symbol: str
    name: str
    instrument_type: str
    segment: str

    @property
    def key(self) -> str:
        """``NSE:RELIANCE``, as Kite's APIs name an instrument."""
        return f"{self.exchange}:{self.trading_symbol}"

    @property
    def asset_type(self) -> str:
        if self.segment == "INDICES":
            return "Equity Index"
        return {"EQ": "Equity", "FUT": "Derivative", "CE": "Derivative", "PE": "Derivative"}.get(
            self.instrument_type, self.instrument_type.title() or "Equity")

    def feed(self, source: str) -> Feed:
        return exchange_feed(
            exchange_feed_id("kite", self.exchange, self.trading_symbol), exchange=self.exchange,
            trading_symbol=self.trading_symbol, name=self.name or self.trading_symbol, expo=expo_of(self.token),
            source=source, asset_type=self.asset_type, schedule=NSE_SCHEDULE,
            extra={"instrument_token": str(self.token), "segment": self.segment,
                   "instrument_type": self.instrument_type})


def parse_instruments(text: str) -> list[Instrument]:
    """The rows of an instruments CSV; ``InstrumentsError`` naming the line that is wrong."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InstrumentsError(f"instruments CSV lacks the column(s) {', '.join(missing)}")
    instruments = []
    for line, row in enumerate(reader, start=2):
        try:
            token = int(row["instrument_token"])
        except (TypeError, ValueError):
            raise InstrumentsError(f"instruments CSV line {line}: instrument_token {row['instrument_token']!r} "
                             "is not a number") from None
        instruments.append(Instrument(token, row["exchange"].strip(), row["tradingsymbol"].strip(),
                                      (row.get("name") or "").strip(), row["instrument_type"].strip(),
                                      row["segment"].strip()))
    return instruments


def load_instruments(path: Path) -> list[Instrument]:
    return parse_instruments(path.read_text(encoding="utf-8"))


def select(instruments: Iterable[Instrument], symbols: Iterable[str]) -> list[Instrument]:
    """The instruments named ``RELIANCE`` or ``NSE:RELIANCE`` (a bare symbol prefers NSE, then BSE);
    ``InstrumentsError`` for a name the file does not have."""
    by_key = {i.key.upper(): i for i in instruments}
    by_symbol: dict[str, Instrument] = {}
    for instrument in sorted(by_key.values(), key=lambda i: (i.exchange != "NSE", i.exchange != "BSE")):
        by_symbol.setdefault(instrument.trading_symbol.upper(), instrument)
    chosen = []
    for symbol in symbols:
        name = symbol.strip().upper()
        found = by_key.get(name) if ":" in name else by_symbol.get(name)
        if found is None:
            raise InstrumentsError(f"Kite instrument {symbol!r} is not in the instruments file")
        chosen.append(found)
    return list(dict.fromkeys(chosen))
