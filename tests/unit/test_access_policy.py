"""The access policy without a server: where a key is found, the keys file and its reloads, what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pricefeed.policy import AccessPolicy, Admission, AnonymousLimits, KeyRing, Refusal, presented_key, read_keys_file

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
