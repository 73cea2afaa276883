"""TA-Lib's batch functions over a list of bars, shaped as pricefeed's streaming indicators are: the reference
the golden tests compare with."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import talib

from pricefeed.analytics.candles import Bar
from pricefeed.analytics.indicators import PATTERNS, Periods, columns_of, indicator_lines

DAY_US = 86_400_000_000
"""Sessions of the golden series are UTC days."""


def batch(bars: list[Bar], periods: Periods, day_us: int = DAY_US) -> dict[str, Any]:
    """TA-Lib's batch functions over ``bars``: each indicator's values at the last bar, shaped as the stream's."""
    o, h, low, c, v = (np.array(col, dtype=np.float64) for col in zip(*map(columns_of, bars), strict=True))
    columns = {"open": o, "high": h, "low": low, "close": c, "real": c, "volume": v}
    session = [b for b in bars if b.start_us // day_us == bars[-1].start_us // day_us]
    shaped: dict[str, Any] = {}
    for line in indicator_lines(periods):
        function = getattr(talib, line.function)
        inputs = columns
        if line.session:
            so, sh, sl, sc, sv = (np.array(col, dtype=np.float64) for col in
                                  zip(*map(columns_of, session), strict=True))
            inputs = {"open": so, "high": sh, "low": sl, "close": sc, "real": sc, "volume": sv}
        names = talib.abstract.Function(line.function).input_names
        args = [inputs[n] for g in names.values() for n in ([g] if isinstance(g, str) else g)]
        out = function(*args, **line.params)
        if line.outputs:
            shaped[line.key] = {k: _value(series[-1]) for k, series in zip(line.outputs, out, strict=True)}
        else:
            shaped[line.key] = None if line.volume and bars[-1].volume is None else _value(out[-1])
    return shaped


def batch_patterns(bars: list[Bar]) -> dict[str, int | None]:
    o, h, low, c, _ = (np.array(col, dtype=np.float64) for col in zip(*map(columns_of, bars), strict=True))
    values: dict[str, int | None] = {}
    for name in PATTERNS:
        lookback = talib.abstract.Function(name).lookback
        values[name] = int(getattr(talib, name)(o, h, low, c)[-1]) if len(bars) > lookback else None
    return values


def _value(x: float) -> float | None:
    return None if math.isnan(x) else float(x)
