"""The resume log across a clean restart: saved on stop, loaded on start, joined by the restored latest prices."""

from __future__ import annotations

from pathlib import Path

from pricefeed.resume import RecentUpdates
from pricefeed.store.recent_state import RecentLog, RecentStore

from .test_resume import FEED, OTHER, seqs, update


async def test_a_clean_stop_saves_the_log_and_the_next_start_resumes_from_it(tmp_path: Path) -> None:
    db = tmp_path / "db"
    before = RecentUpdates()
    log = RecentLog(before, RecentStore(db), {})
    await log.start()
    before.add([update(s) for s in range(1, 8)] + [update(s, feed=OTHER) for s in (1, 2)])
    await log.stop()

    after = RecentUpdates()
    restored = {FEED: update(7), OTHER: update(5, feed=OTHER)}  # OTHER's store is ahead of its saved log
    await RecentLog(after, RecentStore(db), restored).start()
    recovery = after.since(FEED, 4)
    assert (seqs(recovery.updates), recovery.recovered) == ([5, 6, 7], True)
    assert recovery.updates[0] == update(5)
    lost = after.since(OTHER, 2)
    assert (seqs(lost.updates), lost.recovered) == ([5], False), "3 and 4 were never saved (a kill -9)"
