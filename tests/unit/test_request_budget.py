"""The request budget of an HTTP upstream, on a fake clock: a sliding window, first come first served, 429s."""

from __future__ import annotations

import asyncio

import pytest

from pricefeed.sources.http import RequestBudget


class FakeClock:
    """Time that moves only when the test says; ``sleep`` wakes when the test has moved time past its deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, woken))
        await woken

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for deadline, woken in list(self._sleepers):
            if deadline <= self.now:
                self._sleepers.remove((deadline, woken))
                if not woken.done():  # not cancelled meanwhile
                    woken.set_result(None)
        await settle()

    @property
    def sleeping(self) -> int:
        return len(self._sleepers)


async def settle() -> None:
    """Let every task that can run do so (the loop, not the fake clock, moves)."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def budget_on(clock: FakeClock, requests: int, window_s: float, **options: float) -> RequestBudget:
    return RequestBudget(requests, window_s, clock, sleep=clock.sleep, **options)


class Requester:
    """Tasks that each acquire one request, recording when (fake time) and in which order they got it."""

    def __init__(self, budget: RequestBudget, clock: FakeClock) -> None:
        self.budget = budget
        self.clock = clock
        self.granted: list[tuple[int, float]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, count: int) -> None:
        for _ in range(count):
            self.tasks.append(asyncio.create_task(self._one(len(self.tasks))))

    async def _one(self, number: int) -> None:
        await self.budget.acquire()
        self.granted.append((number, self.clock.now))


async def test_requests_within_the_budget_go_at_once(clock: FakeClock) -> None:
    budget = budget_on(clock, 3, 10.0)
    for _ in range(3):
        await budget.acquire()
    assert (budget.sent, budget.waits, clock.sleeping) == (3, 0, 0)
    assert budget.delay() == 10.0  # a fourth waits until the first leaves the window


async def test_the_window_slides(clock: FakeClock) -> None:
    budget = budget_on(clock, 3, 10.0)
    requester = Requester(budget, clock)
    for at in (0.0, 4.0, 5.0):
        clock.now = at
        await budget.acquire()
    requester.start(2)
    await settle()
    assert requester.granted == [] and budget.delay() == 5.0
    await clock.advance(4.75)
    assert requester.granted == []
    await clock.advance(0.25)  # t=10: the request of t=0 leaves the window
    assert requester.granted == [(0, 10.0)]
    await clock.advance(4.0)  # t=14: the one of t=4 leaves
    assert requester.granted == [(0, 10.0), (1, 14.0)]
    assert (budget.sent, budget.waits) == (5, 2)


async def test_a_burst_is_spread_over_windows_first_come_first_served(clock: FakeClock) -> None:
    budget = budget_on(clock, 2, 1.0)
    requester = Requester(budget, clock)
    requester.start(7)
    await settle()
    for _ in range(3):
        await clock.advance(1.0)
    assert requester.granted == [(0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0), (6, 3.0)]
    assert (budget.sent, budget.waits) == (7, 5)


async def test_a_429_stops_every_request_until_retry_after(clock: FakeClock) -> None:
    budget = budget_on(clock, 10, 10.0)
    await budget.acquire()
    assert budget.penalize(5.0) == 5.0
    assert budget.cooling_down_s == 5.0 and budget.delay() == 5.0
    requester = Requester(budget, clock)
    requester.start(3)
    await clock.advance(4.5)
    assert requester.granted == []
    await clock.advance(0.5)
    assert requester.granted == [(0, 5.0), (1, 5.0), (2, 5.0)]
    assert budget.status() == {"requests_per_window": 10, "window_s": 10.0, "sent": 4, "waits": 3,
                               "rate_limited": 1, "cooling_down_s": 0.0}


async def test_a_429_while_requests_wait_for_the_window_holds_them_longer(clock: FakeClock) -> None:
    budget = budget_on(clock, 1, 10.0)
    await budget.acquire()
    requester = Requester(budget, clock)
    requester.start(1)
    await clock.advance(2.0)
    budget.penalize(30.0)  # the upstream says: nothing before t=32
    await clock.advance(8.0)  # t=10: the window has room, the cool-down not over
    assert requester.granted == []
    await clock.advance(22.0)
    assert requester.granted == [(0, 32.0)]


async def test_a_429_without_retry_after_cools_down_for_the_penalty(clock: FakeClock) -> None:
    assert budget_on(clock, 10, 10.0).penalize(None) == 60.0  # public Hermes' penalty
    budget = budget_on(clock, 10, 10.0, penalty_s=7.5)
    assert budget.penalize(None) == 7.5 and budget.delay() == 7.5


async def test_a_shorter_cool_down_never_cuts_a_longer_one(clock: FakeClock) -> None:
    budget = budget_on(clock, 10, 10.0)
    budget.penalize(30.0)
    budget.penalize(5.0)
    assert budget.delay() == 30.0 and budget.rate_limited == 2


async def test_a_cancelled_waiter_gives_its_turn_to_the_next(clock: FakeClock) -> None:
    budget = budget_on(clock, 1, 1.0)
    requester = Requester(budget, clock)
    requester.start(3)
    await settle()
    requester.tasks[1].cancel()  # a stream stopped while it waited
    await clock.advance(1.0)
    await clock.advance(1.0)
    assert requester.granted == [(0, 0.0), (2, 1.0)]
    assert budget.sent == 2


@pytest.mark.parametrize(("requests", "window_s"), [(0, 10.0), (10, 0.0), (10, -1.0)])
def test_a_budget_that_allows_nothing_is_refused(requests: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        RequestBudget(requests, window_s)
