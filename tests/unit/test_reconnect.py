"""The shared reconnect loop and make-before-break handover, with a scripted connection and recorded waits."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

import pytest

from pricefeed.resilience import Backoff, ConnectionState, Handover, Reconnect, ReconnectingConnection, Rejected

Step = Callable[["Scripted"], str]


def fail_with(exc: Exception) -> Step:
    def step(connection: Scripted) -> str:
        raise exc
    return step


def serve_then_end(connection: Scripted) -> str:
    connection.connected()
    return "closed by the server"


class Scripted(ReconnectingConnection):
    """Each attempt plays the next step; once the script is over it waits (connected) until cancelled."""

    def __init__(self, *steps: Step, backoff: Backoff | None = None) -> None:
        self.steps = deque(steps)
        self.states: list[ConnectionState] = []
        self.waits: list[float] = []
        self.idle = asyncio.Event()
        super().__init__("scripted", backoff or Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.0),
                         on_change=lambda c: c.states.append(c.state), sleep=self._record_wait)

    async def _record_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def connect_and_run(self) -> str:
        if self.steps:
            return self.steps.popleft()(self)
        self.connected()
        self.idle.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def run_until_idle(connection: Scripted) -> None:
    connection.start()
    await asyncio.wait_for(connection.idle.wait(), 5.0)


C, K, B, R, S = (ConnectionState.CONNECTED, ConnectionState.CONNECTING, ConnectionState.BACKOFF,
                 ConnectionState.REJECTED, ConnectionState.STOPPED)


async def test_failures_back_off_and_every_attempt_is_reported() -> None:
    connection = Scripted(fail_with(OSError("refused")), fail_with(Reconnect("HTTP 503")), serve_then_end)
    await run_until_idle(connection)
    assert connection.waits == [1.0, 2.0, 4.0]
    assert connection.states == [B, K, B, K, C, B, K, C]
    assert connection.reconnects == 3
    assert connection.last_error == "closed by the server"
    connection.cancel()
    await connection.wait_closed()
    assert connection.state == S and connection.done


async def test_retry_after_replaces_the_backoff_delay_but_the_backoff_still_grows() -> None:
    connection = Scripted(fail_with(Reconnect("HTTP 429", 30.0)), fail_with(Reconnect("routine close", 0.0)),
                          fail_with(OSError("reset")))
    await run_until_idle(connection)
    assert connection.waits == [30.0, 0.0, 4.0]


async def test_a_stable_connection_starts_the_backoff_again() -> None:
    backoff = Backoff(initial_s=1.0, factor=2.0, cap_s=8.0, jitter=0.0, stable_after_s=0.0)
    connection = Scripted(fail_with(OSError("a")), fail_with(OSError("b")), serve_then_end, fail_with(OSError("c")),
                          backoff=backoff)
    await run_until_idle(connection)
    assert connection.waits == [1.0, 2.0, 1.0, 2.0]


async def test_a_rejection_ends_the_loop() -> None:
    connection = Scripted(fail_with(OSError("refused")), fail_with(Rejected("HTTP 404: Price ids not found: 0xab")))
    connection.start()
    await asyncio.wait_for(connection.wait_closed(), 5.0)
    assert connection.states == [B, K, R]
    assert connection.last_error == "HTTP 404: Price ids not found: 0xab"
    assert connection.waits == [1.0] and connection.reconnects == 1


async def test_an_unexpected_error_costs_a_reconnect_and_is_logged_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    connection = Scripted(fail_with(KeyError("bug")))
    await run_until_idle(connection)
    assert connection.waits == [1.0] and connection.last_error == "KeyError: 'bug'"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and "scripted: unexpected error" in record.getMessage()
    connection.cancel()


async def test_connected_for_counts_only_while_connected() -> None:
    connection = Scripted()
    assert connection.connected_for() == 0.0
    connection.connected()
    assert connection.connected_since is not None
    assert connection.connected_for(connection.connected_at + 2.5) == 2.5  # type: ignore[operator]
    assert connection.status() | {"connected_since": None} == {
        "state": "connected", "connected_since": None, "reconnects": 0, "last_error": None}


# -- make before break -----------------------------------------------------------


def up(name: str) -> Scripted:
    connection = Scripted()
    connection.name = name
    connection.connected()
    return connection


async def test_a_replaced_connection_serves_until_taken_over() -> None:
    handover: Handover[Scripted] = Handover()
    old = up("old")
    handover.retire(old)
    handover.settle(lambda c: False)  # its successor is not up yet
    assert handover.retiring == [old] and old.state == C
    handover.settle(lambda c: True)
    assert handover.retiring == [] and old.state == S


async def test_a_replaced_connection_that_is_down_closes_at_once() -> None:
    handover: Handover[Scripted] = Handover()
    down = Scripted()  # never connected: it serves nobody
    handover.retire(down)
    handover.settle(lambda c: False)
    assert handover.retiring == [] and down.state == S


async def test_closing_the_handover_closes_every_replaced_connection() -> None:
    handover: Handover[Scripted] = Handover()
    running = Scripted()
    await run_until_idle(running)
    handover.retire(running)
    await handover.close()
    assert running.done and running.state == S and handover.retiring == []
