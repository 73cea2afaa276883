"""The origin policy: a pure decision from the request's Origin (and Host) headers."""

from __future__ import annotations

import pytest

from pricefeed.policy import OriginPolicy, normalise_origin


def test_unset_or_star_allows_every_origin() -> None:
    for policy in (OriginPolicy.of([]), OriginPolicy.of(["*"]), OriginPolicy.of(["http://a.example", "*"])):
        assert policy.allows_any and policy.allows("http://evil.example") and policy.refusal("null") is None


def test_a_list_allows_its_origins_and_refuses_the_rest() -> None:
    policy = OriginPolicy.of(["http://localhost:3000", "https://App.Example.com/", "http://b.example:80"])
    assert policy.allows("http://localhost:3000") and policy.allows("HTTPS://app.example.com")
    assert policy.allows("http://b.example")  # a default port is the same origin
    assert not policy.allows("http://localhost:3001") and not policy.allows("https://localhost:3000")
    assert not policy.allows("null") and not policy.allows("garbage")
    assert policy.allows(None)  # no Origin: not a browser
    assert policy.refusal("http://evil.example") == (
        "origin 'http://evil.example' is not allowed: set CORS_ORIGINS (or --cors-origins) to allow it\n")


def test_a_page_of_the_server_itself_is_allowed() -> None:
    policy = OriginPolicy.of(["http://localhost:3000"])
    assert policy.allows("http://127.0.0.1:8081", host="127.0.0.1:8081")
    assert not policy.allows("http://127.0.0.1:8081", host="127.0.0.1:9999")


@pytest.mark.parametrize("bad", ["localhost:3000", "ftp://a.example", "http://a.example/path", "http://", "*.example"])
def test_a_setting_that_is_not_an_origin_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid origin"):
        normalise_origin(bad)
