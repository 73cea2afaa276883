from __future__ import annotations

import pytest
from benchmarks.loadclient import CLOCKED_FACES, FACES, my_clients, parse_args
from benchmarks.profiles import LOAD_CLIENT_FACE, POLICY_SYSTEM, PRICEFEED_VARIANTS, SYSTEMS


def test_the_sampler_and_the_counters_play_every_client_exactly_once() -> None:
    sampler = my_clients(1000, 10, "sampler", 0, 3)
    counters = [my_clients(1000, 10, "counter", part, 3) for part in range(3)]
    assert sampler == list(range(0, 1000, 10))
    played = sampler + [i for part in counters for i in part]
    assert sorted(played) == list(range(1000))
    assert max(map(len, counters)) - min(map(len, counters)) <= 1


def test_without_sampling_the_counters_play_every_client() -> None:
    assert my_clients(5, 0, "sampler", 0, 1) == []
    assert my_clients(5, 0, "counter", 0, 1) == [0, 1, 2, 3, 4]


def test_a_hermes_sampler_needs_a_seed000_clock_and_a_counter_does_not() -> None:
    common = ["--url", "http://127.0.0.1:1", "--clients", "10", "--server-pid", "1"]
    assert CLOCKED_FACES == ("hermes-ws", "hermes-sse")
    for face in CLOCKED_FACES:
        with pytest.raises(SystemExit):
            parse_args([*common, "--face", face, "--role", "sampler"])
        sampler = parse_args([*common, "--face", face, "--role", "sampler", "--clock-url", "ws://127.0.0.1:2/"])
        assert (sampler.face, sampler.clock_url) == (face, "ws://127.0.0.1:2/")
        assert parse_args([*common, "--face", face, "--role", "counter"]).clock_url is None
    assert parse_args([*common, "--role", "sampler"]).face == "seed000"


def test_a_streams_sampler_dates_by_the_messages_own_timestamp_and_needs_no_clock() -> None:
    args = parse_args(["--url", "ws://127.0.0.1:1/ws/stream", "--clients", "10", "--server-pid", "1",
                       "--face", "streams", "--role", "sampler"])
    assert (args.face, args.clock_url) == ("streams", None)
    assert "streams" not in CLOCKED_FACES


def test_every_system_is_spoken_to_in_a_face_the_load_client_knows() -> None:
    # and the seed-000 face run other ways: keyed (the policy scenario), with workers and on Redis (scaling)
    assert set(LOAD_CLIENT_FACE) == {*SYSTEMS, *PRICEFEED_VARIANTS} and POLICY_SYSTEM in PRICEFEED_VARIANTS
    assert set(LOAD_CLIENT_FACE.values()) == set(FACES)
