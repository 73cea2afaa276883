"""A per-connection queue of frames waiting to be written, conflated per key.

Price frames are keyed by feed, so a connection that cannot keep up holds at
most the newest pending price of each feed, never a backlog. Control frames
(confirmations, errors) get keys of their own and are never dropped. Frames
leave in the order their keys first arrived.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable

_control_keys = itertools.count()


class Outbox:
    __slots__ = ("_bytes", "_frames")

    def __init__(self) -> None:
        self._frames: dict[Hashable, bytes] = {}
        self._bytes = 0

    def put(self, key: Hashable, frame: bytes) -> None:
        """Queue ``frame``, replacing a pending frame with the same key."""
        frames = self._frames
        old = frames.get(key)
        if old is not None:
            self._bytes -= len(old)
        frames[key] = frame
        self._bytes += len(frame)

    def put_control(self, frame: bytes) -> None:
        """Queue a frame that must not be conflated with any other."""
        self.put(("control", next(_control_keys)), frame)

    def discard(self, key: Hashable) -> None:
        """Drop a pending frame, e.g. the price of a feed just unsubscribed."""
        old = self._frames.pop(key, None)
        if old is not None:
            self._bytes -= len(old)

    def take(self) -> bytes:
        """All pending frames in order, as one buffer for one write; the outbox is then empty."""
        return b"".join(self.take_frames())

    def take_frames(self) -> list[bytes]:
        """All pending frames in order; the outbox is then empty."""
        frames = list(self._frames.values())
        self._frames.clear()
        self._bytes = 0
        return frames

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)
