"""RecentUpdates: exactly what a client missed after its seq, or the latest with recovered=False."""

from __future__ import annotations

from pricefeed.model import PriceUpdate
from pricefeed.resume import RecentUpdates

FEED = "ab" * 32
OTHER = "cd" * 32


def update(seq: int, publish_s: float = 0.0, feed: str = FEED) -> PriceUpdate:
    return PriceUpdate(feed_id=feed, price=100 + seq, conf=1, expo=-2, publish_time_us=int(publish_s * 1e6) + seq,
                       ema_price=100, ema_conf=1, source="test", seq=seq)


def seqs(updates: list[PriceUpdate]) -> list[int]:
    return [u.seq for u in updates]


def test_since_returns_exactly_what_came_after_in_order() -> None:
    recent = RecentUpdates(keep_s=600)
    recent.add([update(s) for s in range(1, 11)] + [update(1, feed=OTHER)])
    got = recent.since(FEED, 6)
    assert (seqs(got.updates), got.recovered) == ([7, 8, 9, 10], True)
    assert (seqs(recent.since(FEED, 0).updates), recent.since(FEED, 0).recovered) == (list(range(1, 11)), True)
    at_latest = recent.since(FEED, 10)
    assert (at_latest.updates, at_latest.recovered) == ([], True)
    assert seqs(recent.since(OTHER, 0).updates) == [1]


def test_older_than_kept_or_unknown_seq_gives_latest_not_recovered() -> None:
    recent = RecentUpdates(keep_s=10)
    recent.add([update(s, publish_s=s) for s in range(1, 31)])  # keeps publish times within 10 s of the newest
    assert seqs(recent.since(FEED, 20).updates) == list(range(21, 31))
    too_old = recent.since(FEED, 19)
    assert (seqs(too_old.updates), too_old.recovered) == ([30], False)
    never_had = recent.since(FEED, 45)  # a client ahead of this process (a kill -9 lost those seqs)
    assert (seqs(never_had.updates), never_had.recovered) == ([30], False)
    nothing = recent.since(OTHER, 3)
    assert (nothing.updates, nothing.recovered) == ([], False)


def test_overlapping_backfill_is_ignored_and_a_jump_starts_over() -> None:
    recent = RecentUpdates()
    recent.add([update(s) for s in range(1, 6)])
    recent.add([update(s) for s in range(3, 8)])  # overlaps 3..5
    assert seqs(recent.since(FEED, 0).updates) == list(range(1, 8))
    recent.add([update(12), update(13)])  # 8..11 lost: what was kept no longer joins up
    assert seqs(recent.since(FEED, 11).updates) == [12, 13]
    lost = recent.since(FEED, 9)
    assert (seqs(lost.updates), lost.recovered) == ([13], False)


def test_restored_latest_lets_a_client_at_that_seq_resume() -> None:
    recent = RecentUpdates()
    recent.add([update(41)])  # what the store restored after a restart
    assert recent.since(FEED, 41).recovered
    recent.add([update(42)])
    assert (seqs(recent.since(FEED, 41).updates), recent.since(FEED, 41).recovered) == ([42], True)


def test_updates_within_the_last_seconds_of_each_feed() -> None:
    recent = RecentUpdates(keep_s=600)
    recent.add([update(s, publish_s=s) for s in range(1, 11)] + [update(1, publish_s=100, feed=OTHER)])
    assert seqs(list(recent.updates(within_s=3.5))) == [7, 8, 9, 10, 1]
    assert len(list(recent.updates())) == 11
