"""The access policy (policy.py) under arbitrary credentials and keys files: only a known key is admitted, and a
keys document parses or says what is wrong."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pricefeed.policy import AccessPolicy, Admission, KeyRing, Refusal, parse_keys, presented_key

from .strategies import JSON


@given(st.dictionaries(st.sampled_from(["authorization", "sec-websocket-protocol", "origin"]), st.text(max_size=40)),
       st.dictionaries(st.sampled_from(["token", "ACCESS_TOKEN", "other"]), st.text(max_size=20)))
def test_the_policy_admits_only_a_known_key(headers: dict[str, str], query: dict[str, str]) -> None:
    policy = AccessPolicy(KeyRing(["the-key"]))
    decision = policy.admit("seed000", headers, query, "1.2.3.4")
    presented = presented_key(headers, query)
    if presented == "the-key":
        assert isinstance(decision, Admission)
    else:
        assert isinstance(decision, Refusal) and decision.status == 401


KEY_ENTRIES = st.fixed_dictionaries({"key": st.text(max_size=5) | JSON}, optional={
    "name": JSON, "faces": JSON | st.lists(st.text(max_size=5)), "feeds": JSON,
    "limits": JSON | st.dictionaries(st.sampled_from(["connections", "bytes_per_second", "x"]), JSON)})


@given(JSON | st.lists(KEY_ENTRIES, max_size=3).map(lambda keys: {"keys": keys}))
def test_a_keys_document_parses_or_says_what_is_wrong(document: Any) -> None:
    try:
        parse_keys(document, "keys.json")
    except ValueError as exc:
        assert str(exc)
