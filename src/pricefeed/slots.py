"""The one slot clock of pricefeed: every feed's slots, local or upstream, count in it.

Slots are ``interval_s`` long and counted from the unix epoch, so the same
instant has the same slot number across restarts and machines, and a slot
number read in one feed compares with one read in another.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SLOT_INTERVAL_S = 0.4
"""Solana's slot time, which pythd and the oracle program count in."""


class SlotClock:
    """Slots of ``interval_s`` counted from the unix epoch.

    :meth:`now` never goes back, even if the wall clock does, since quotes must not move to an older slot.
    """

    def __init__(self, interval_s: float = SLOT_INTERVAL_S, clock: Callable[[], float] = time.time) -> None:
        if interval_s <= 0:
            raise ValueError("slot interval must be positive")
        self.interval_s = interval_s
        self.clock = clock
        """The wall clock (unix seconds) the slots are read from."""
        self._last = 0

    def now(self) -> int:
        self._last = max(self._last, self.slot_at(self.clock()))
        return self._last

    def slot_at(self, unix_s: float) -> int:
        """The slot an instant falls in (for a price stamped with a publish time)."""
        return int(unix_s / self.interval_s)
