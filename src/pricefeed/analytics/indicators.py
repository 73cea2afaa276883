"""Technical indicators and candlestick patterns of one candle series, incremental with TA-Lib's stream handles.

Each line (an indicator or a pattern) is a ``talib.stream`` handle: opened on
the closed bars once there are enough of them (its lookback + 1, exactly where
TA-Lib's batch function gives its first value), then ``update`` on each close
and ``peek`` on the forming bar, O(1) and bit-identical to the batch function
over the same bars. Until a line is open its value is ``None``, never a number
from too few bars. VWAP starts again at each session (trading day).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import talib
from talib import abstract, stream

from ..model import scaled
from .candles import Bar

Columns = tuple[float, float, float, float, float]
"""A bar as TA-Lib reads it: open, high, low, close, volume."""

InsufficientHistory: type[Exception] = talib.InsufficientHistory  # type: ignore[attr-defined]


def _function(name: str) -> Any:
    return abstract.Function(name)  # type: ignore[attr-defined]


_INPUTS = {"open": 0, "high": 1, "low": 2, "close": 3, "real": 3, "volume": 4}
PATTERNS: tuple[str, ...] = tuple(talib.get_function_groups()["Pattern Recognition"])  # type: ignore[no-untyped-call]
"""TA-Lib's 61 candlestick pattern functions (``CDL...``)."""


@dataclass(frozen=True, slots=True)
class Periods:
    """The indicators' parameters; a subscription may change any of them."""

    sma: int = 20
    ema: int = 20
    rsi: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bollinger: int = 20
    bollinger_deviations: float = 2.0
    atr: int = 14
    stochastic_k: int = 14
    stochastic_slow_k: int = 3
    stochastic_d: int = 3
    adx: int = 14

    @classmethod
    def parse(cls, raw: object) -> Periods:
        """A subscription's ``periods`` object; ``ValueError`` saying what is wrong."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("\"periods\" must be an object, e.g. {\"rsi\": 14, \"sma\": 50}")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in known:
                raise ValueError(f"unknown period {name!r}: known periods are {', '.join(known)}")
            if name == "bollinger_deviations":
                ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 10
            else:
                ok = isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= 1000
            if not ok:
                raise ValueError(f"period {name!r} must be " + ("a number in (0, 10]" if name == "bollinger_deviations"
                                                               else "an integer from 2 to 1000") + f", got {value!r}")
            values[name] = value
        return cls(**values)

    @property
    def key(self) -> str:
        """Names these periods in a topic: empty for the defaults."""
        default = Periods()
        return ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                        if getattr(self, f.name) != getattr(default, f.name))


@dataclass(frozen=True, slots=True)
class Line:
    """One TA-Lib function on the bars: its output names (one name: a bare value)."""

    key: str
    function: str
    params: dict[str, Any]
    outputs: tuple[str, ...] = ()
    session: bool = False
    """Starts again at each session (VWAP)."""
    volume: bool = False
    """Meaningless without volume: ``None`` on a series that has none."""

    @property
    def inputs(self) -> tuple[int, ...]:
        names = _function(self.function).input_names
        return tuple(_INPUTS[name] for group in names.values()
                     for name in ([group] if isinstance(group, str) else group))

    @property
    def needed(self) -> int:
        """Bars before the first value: TA-Lib's lookback + 1."""
        function = _function(self.function)
        function.set_parameters(self.params)
        return int(function.lookback) + 1

    def open(self, bars: Sequence[Columns]) -> Any:
        columns = np.array(bars, dtype=np.float64).T
        return getattr(stream, self.function)(*(columns[i] for i in self.inputs), **self.params)


def indicator_lines(p: Periods) -> tuple[Line, ...]:
    return (
        Line("sma", "SMA", {"timeperiod": p.sma}),
        Line("ema", "EMA", {"timeperiod": p.ema}),
        Line("rsi", "RSI", {"timeperiod": p.rsi}),
        Line("macd", "MACD", {"fastperiod": p.macd_fast, "slowperiod": p.macd_slow, "signalperiod": p.macd_signal},
             ("macd", "signal", "histogram")),
        Line("bollinger_bands", "BBANDS", {"timeperiod": p.bollinger, "nbdevup": p.bollinger_deviations,
                                           "nbdevdn": p.bollinger_deviations}, ("upper", "middle", "lower")),
        Line("atr", "ATR", {"timeperiod": p.atr}),
        Line("stochastic", "STOCH", {"fastk_period": p.stochastic_k, "slowk_period": p.stochastic_slow_k,
                                     "slowd_period": p.stochastic_d}, ("k", "d")),
        Line("adx", "ADX", {"timeperiod": p.adx}),
        Line("obv", "OBV", {}, volume=True),
        Line("vwap", "VWAP", {}, session=True, volume=True),
    )


PATTERN_LINES = tuple(Line(name, name, {}) for name in PATTERNS)
PATTERN_NAMES = {name: str(_function(name).info["display_name"]) for name in PATTERNS}


def columns_of(bar: Bar) -> Columns:
    e = bar.expo
    return (scaled(bar.open, e), scaled(bar.high, e), scaled(bar.low, e), scaled(bar.close, e),
            float(bar.volume or 0))


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


class _LineState:
    __slots__ = ("handle", "inputs", "line", "needed", "pending", "session")

    def __init__(self, line: Line) -> None:
        self.line = line
        self.needed = line.needed
        self.inputs = line.inputs
        self.handle: Any = None
        self.pending: list[Columns] = []
        """Closed bars since the line started, until its handle opens."""
        self.session: int | None = None

    def _new_session(self, day: int) -> bool:
        return self.line.session and self.session is not None and day != self.session

    def close(self, bar: Columns, day: int) -> Any:
        if self._new_session(day):
            self.handle, self.pending = None, []
        self.session = day
        if self.handle is not None:
            return self.handle.update(*(bar[i] for i in self.inputs))
        self.pending.append(bar)
        if len(self.pending) < self.needed:
            return None
        try:
            self.handle = self.line.open(self.pending)
        except InsufficientHistory:
            return None
        self.pending = []
        return self.handle.value

    def peek(self, bar: Columns, day: int) -> Any:
        fresh = self._new_session(day)
        if self.handle is not None and not fresh:
            return self.handle.peek(*(bar[i] for i in self.inputs))
        bars = [bar] if fresh else [*self.pending, bar]
        if len(bars) < self.needed:
            return None
        try:
            return self.line.open(bars).value
        except InsufficientHistory:
            return None


class IndicatorSeries:
    """Every indicator and pattern of one feed at one interval with one set of periods."""

    def __init__(self, periods: Periods, day_of: Callable[[int], int]) -> None:
        self.periods = periods
        self.day_of = day_of
        self._indicators = [_LineState(line) for line in indicator_lines(periods)]
        self._patterns = [_LineState(line) for line in PATTERN_LINES]
        self.patterns: list[dict[str, Any]] | None = None
        """The patterns that fired on the last closed bar (None before any pattern can be known)."""
        self.pattern_values: dict[str, int | None] = {}

    def close(self, bar: Bar) -> dict[str, Any]:
        """A closed bar: its indicators; its patterns are kept in ``patterns`` (raw values in ``pattern_values``)."""
        columns, day = columns_of(bar), self.day_of(bar.start_us)
        values = {s.line.key: s.close(columns, day) for s in self._indicators}
        self.pattern_values = {s.line.key: s.close(columns, day) for s in self._patterns}
        self.patterns = self._fired(self.pattern_values)
        return self._shape(values, bar)

    def peek(self, bar: Bar) -> dict[str, Any]:
        """The forming bar's indicators (nothing is committed)."""
        columns, day = columns_of(bar), self.day_of(bar.start_us)
        return self._shape({s.line.key: s.peek(columns, day) for s in self._indicators}, bar)

    def peek_patterns(self, bar: Bar) -> dict[str, int | None]:
        """Every pattern's raw TA-Lib value were the forming bar to close now (nothing is committed)."""
        columns, day = columns_of(bar), self.day_of(bar.start_us)
        return {s.line.key: s.peek(columns, day) for s in self._patterns}

    @staticmethod
    def _fired(values: dict[str, int | None]) -> list[dict[str, Any]] | None:
        """The patterns that fired, bullish (> 0) or bearish (< 0) with TA-Lib's strength; None while none is
        warm yet."""
        if all(v is None for v in values.values()):
            return None
        return [{"pattern": name, "name": PATTERN_NAMES[name], "signal": "bullish" if value > 0 else "bearish",
                 "strength": int(value)} for name, value in values.items() if value]

    def _shape(self, values: dict[str, Any], bar: Bar) -> dict[str, Any]:
        shaped: dict[str, Any] = {}
        no_volume = bar.volume is None
        for state in self._indicators:
            line, value = state.line, values[state.line.key]
            if line.outputs:
                parts = (None,) * len(line.outputs) if value is None else tuple(_number(v) for v in value)
                shaped[line.key] = dict(zip(line.outputs, parts, strict=True))
            else:
                shaped[line.key] = None if value is None or (line.volume and no_volume) else _number(value)
        return shaped
