"""The access policy without a server: where a key is found, the keys file and its reloads, what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pricefeed.policy import (
    AccessPolicy,
    Admission,
    AnonymousLimits,
    ApiKey,
    KeyLimits,
    KeyRing,
    Refusal,
    presented_key,
    read_keys_file,
)
from pricefeed.transport.limits import ByteBudget

KEYS_TOML = """
[[keys]]
name = "alice"
key = "alice-secret"
faces = ["hermes", "lazer"]
feeds = ["Crypto.BTC/USD"]
limits = { connections = 2, messages_per_second = 5, bytes_per_second = 1000 }

[[keys]]
name = "bob"
key = "bob-secret"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("headers", "query", "found"), [
    ({"authorization": "Bearer abc"}, {}, "abc"),
    ({"authorization": "bearer  abc "}, {}, "abc"),
    ({}, {"ACCESS_TOKEN": "abc"}, "abc"),
    ({}, {"token": "abc"}, "abc"),
    ({"sec-websocket-protocol": "pyth-lazer-auth, abc"}, {}, "abc"),
    ({"authorization": "Basic abc"}, {}, None),
    ({"sec-websocket-protocol": "pyth-lazer-auth"}, {}, None),
    ({}, {}, None),
])
def test_a_key_is_found_in_each_ecosystems_place(headers: dict[str, str], query: dict[str, str],
                                                  found: str | None) -> None:
    assert presented_key(headers, query) == found


def test_the_keys_file_gives_names_faces_feeds_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(KEYS_TOML)
    alice, bob = read_keys_file(path)
    assert (alice.name, alice.limits.connections, alice.limits.messages_per_second) == ("alice", 2, 5)
    assert alice.allows_face("hermes_ws") and alice.allows_face("lazer") and not alice.allows_face("seed000")
    assert alice.allows_feed("x", "Crypto.BTC/USD") and not alice.allows_feed("Crypto.ETH/USD")
    assert bob.allows_face("seed000") and bob.limits.connections is None
    assert "alice-secret" not in repr(alice)


def test_a_bad_keys_file_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"name": "x", "key": "k", "limits": {"conections": 1}}]}')
    with pytest.raises(ValueError, match=r"unknown limits \['conections'\]"):
        read_keys_file(path)


def test_the_keys_file_is_re_read_when_it_changes_and_a_bad_change_keeps_the_keys(tmp_path: Path) -> None:
    path, clock = tmp_path / "keys.toml", Clock()
    path.write_text(KEYS_TOML)
    ring = KeyRing(["static"], path, clock=clock)
    assert ring.get("bob-secret") is not None and ring.get("static") is not None
    path.write_text('[[keys]]\nname = "carol"\nkey = "carol-secret"\n')
    os.utime(path, (1, 1))
    assert ring.get("carol-secret") is None  # checked at most once a second
    clock.now += 1.5
    assert ring.get("carol-secret") is not None and ring.get("bob-secret") is None
    path.write_text("not toml [")
    os.utime(path, (2, 2))
    clock.now += 1.5
    assert ring.get("carol-secret") is not None


def test_keys_refuse_missing_wrong_and_disallowed_with_401_401_403(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(KEYS_TOML)
    policy = AccessPolicy(KeyRing([], path))
    refusals = [policy.admit("seed000", h, {}, "10.0.0.1") for h in (
        {}, {"authorization": "Bearer nope"}, {"authorization": "Bearer alice-secret"})]
    assert [(r.status, r.reason) for r in refusals if isinstance(r, Refusal)] == [
        (401, "missing_key"), (401, "wrong_key"), (403, "face_not_allowed")]
    assert refusals[0].who == "10.0.0.1" and refusals[2].who == "alice"


def test_a_keys_connections_are_counted_over_every_face_until_released(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(KEYS_TOML)
    policy = AccessPolicy(KeyRing([], path))
    query = {"ACCESS_TOKEN": "alice-secret"}
    first = policy.admit("hermes_ws", {}, query, "10.0.0.1")
    second = policy.admit("lazer", {}, query, "10.0.0.2")
    third = policy.admit("lazer", {}, query, "10.0.0.3")
    assert isinstance(first, Admission) and isinstance(second, Admission)
    assert isinstance(third, Refusal) and (third.status, third.reason) == (429, "key_connections")
    policy.release(first)
    policy.release(first)  # twice is once
    assert policy.connections_of("alice") == 1
    assert isinstance(policy.admit("lazer", {}, query, "10.0.0.3"), Admission)


def test_without_keys_an_ip_is_limited_in_connections_and_handshakes() -> None:
    clock = Clock()
    policy = AccessPolicy(anonymous=AnonymousLimits(connections_per_ip=2, handshakes_per_second_per_ip=1,
                                                    handshake_burst=3), clock=clock)
    a, b = policy.admit("seed000", {}, {}, "1.1.1.1"), policy.admit("seed000", {}, {}, "1.1.1.1")
    over = policy.admit("seed000", {}, {}, "1.1.1.1")
    assert isinstance(a, Admission) and isinstance(b, Admission)
    assert isinstance(over, Refusal) and over.reason == "ip_connections"
    assert isinstance(policy.admit("seed000", {}, {}, "2.2.2.2"), Admission)  # another IP is not affected
    assert isinstance(a, Admission)
    policy.release(a)
    burst_spent = policy.admit("seed000", {}, {}, "1.1.1.1")
    assert isinstance(burst_spent, Refusal) and burst_spent.reason == "ip_handshakes"
    clock.now += 1.0
    assert isinstance(policy.admit("seed000", {}, {}, "1.1.1.1"), Admission)


def test_a_byte_budget_reads_the_clock_only_when_it_runs_out() -> None:
    clock = Clock()
    reads = 0

    def counting() -> float:
        nonlocal reads
        reads += 1
        return clock()

    budget = ByteBudget(1000, 2000, counting)
    reads = 0
    assert [budget.spend(500) for _ in range(4)] == [True] * 4 and reads == 0  # the burst, without the clock
    assert budget.spend(1) is False and reads == 1  # nothing left, none refilled
    clock.now += 0.5
    assert budget.spend(500) is True and budget.spend(1) is False  # half a second refilled 500
    clock.now += 10
    assert budget.spend(2000) is True and budget.spend(1) is False  # refilled to the burst, no more


def test_a_keys_connections_share_its_byte_budget_and_an_ips_its_own() -> None:
    clock = Clock()
    keys = KeyRing(clock=clock)
    keys._static["k"] = ApiKey("k", "k", limits=KeyLimits(bytes_per_second=100))
    policy = AccessPolicy(keys, clock=clock)
    first, second = (policy.admit("seed000", {"authorization": "Bearer k"}, {}, "1.2.3.4") for _ in range(2))
    assert isinstance(first, Admission) and isinstance(second, Admission)
    assert first.byte_budget is second.byte_budget is not None
    anonymous = AccessPolicy(anonymous=AnonymousLimits(bytes_per_second_per_ip=50), clock=clock)
    a, b, c = (anonymous.admit("seed000", {}, {}, ip) for ip in ("1.1.1.1", "1.1.1.1", "2.2.2.2"))
    assert isinstance(a, Admission) and isinstance(b, Admission) and isinstance(c, Admission)
    assert a.byte_budget is b.byte_budget is not c.byte_budget
    assert a.byte_budget is not None and a.byte_budget.rate == 50
    for admission in (a, b):
        anonymous.release(admission)
    d = anonymous.admit("seed000", {}, {}, "1.1.1.1")
    assert isinstance(d, Admission) and d.byte_budget is not a.byte_budget  # forgotten once its last one went


def test_claims_count_feeds_per_key_over_connections_until_released() -> None:
    keys = KeyRing()
    keys._static["k"] = ApiKey("k", "k", feeds=frozenset({"Crypto.BTC/USD", "eth"}),
                               limits=KeyLimits(subscriptions=2))
    policy = AccessPolicy(keys)
    policy.feed_names = lambda feed: {"btc": ("Crypto.BTC/USD",)}.get(feed, ())
    one, two = (policy.admit("seed000", {"authorization": "Bearer k"}, {}, None) for _ in range(2))
    assert isinstance(one, Admission) and isinstance(two, Admission)
    hidden = policy.claim(one, ["btc", "sol"])
    assert isinstance(hidden, Refusal) and (hidden.status, hidden.reason) == (403, "feed_not_allowed")
    assert policy.claim(one, ["btc"]) is None and policy.claim(one, ["btc"]) is None
    assert policy.claim(two, ["eth"]) is None and policy.subscriptions_of("k") == 2
    over = policy.claim(two, ["btc"])
    assert isinstance(over, Refusal) and (over.status, over.reason) == (429, "key_subscriptions")
    policy.unclaim(one, ["btc"])
    assert policy.claim(two, ["btc"]) is None and policy.subscriptions_of("k") == 2
    policy.release(two)
    assert policy.subscriptions_of("k") == 0


def test_the_policy_paths_fan_out_delivers_every_update_to_both_groups() -> None:
    from benchmarks.policy_path import run_path

    result = run_path(clients=20, per_client=3, feeds=5, rounds=2, passes=3)
    # 20 connections x 3 feeds x 3 passes per window, both ways, and nobody was cut by the key's limits
    assert [len(result["per_window"][name]) for name in ("off", "on")] == [2, 2]
    assert result["deliveries_per_cpu_s_off"] > 0 and result["deliveries_per_cpu_s_on"] > 0
