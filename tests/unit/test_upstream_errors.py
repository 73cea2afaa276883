"""What an upstream failure tells a newcomer: no network, nothing listening, a missing or refused API key."""

from __future__ import annotations

import errno
import socket

import httpx
import pytest

from pricefeed.sources.hermes import explain_status
from pricefeed.sources.http import OFFLINE_HINT, describe_failure, unreachable_hint

from ..service import free_port


async def _failure_of(url: str) -> httpx.HTTPError:
    async with httpx.AsyncClient(timeout=5.0) as client:
        with pytest.raises(httpx.HTTPError) as failed:
            await client.get(url)
    return failed.value


async def test_a_name_that_does_not_resolve_says_no_network_try_sim() -> None:
    failure = await _failure_of("http://nonexistent.invalid/v2/price_feeds")  # .invalid never resolves (RFC 6761)
    assert isinstance(failure, httpx.ConnectError)
    assert unreachable_hint(failure) == OFFLINE_HINT == "no network: try `--source sim`"
    assert describe_failure(failure).startswith("ConnectError: ")
    assert describe_failure(failure).endswith(" (no network: try `--source sim`)")


async def test_nothing_listening_says_check_the_url() -> None:
    failure = await _failure_of(f"http://127.0.0.1:{free_port()}/")
    assert isinstance(failure, httpx.ConnectError)
    assert unreachable_hint(failure) == "cannot connect: check the upstream URL, or try `--source sim`"
    assert describe_failure(failure) == f"ConnectError: {failure} ({unreachable_hint(failure)})"


def test_no_route_to_the_network_is_no_network() -> None:
    try:
        try:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
    except httpx.ConnectError as wrapped:
        assert unreachable_hint(wrapped) == OFFLINE_HINT


@pytest.mark.parametrize("failure", [httpx.ReadError("connection reset"), httpx.RemoteProtocolError("peer closed"),
                                     ValueError("not a network failure")])
def test_other_failures_get_no_hint(failure: Exception) -> None:
    assert unreachable_hint(failure) is None
    assert describe_failure(failure) == f"{type(failure).__name__}: {failure}"


def test_a_bare_gaierror_is_no_network() -> None:
    assert unreachable_hint(socket.gaierror(socket.EAI_NONAME, "Name or service not known")) == OFFLINE_HINT


@pytest.mark.parametrize(("status", "has_key", "expected"), [
    (401, False, "HTTP 401: Unauthorized (Hermes requires an API key: pass --pyth-api-key)"),
    (403, False, "HTTP 403: Forbidden (Hermes requires an API key: pass --pyth-api-key)"),
    (401, True, "HTTP 401: Unauthorized (Hermes refused the API key: check --pyth-api-key)"),
    (403, True, "HTTP 403: Forbidden (Hermes refused the API key: check --pyth-api-key)"),
    (500, False, "HTTP 500: Forbidden"),
])
def test_hermes_refusals_say_what_to_do(status: int, has_key: bool, expected: str) -> None:
    body = {401: "Unauthorized"}.get(status, "Forbidden")
    assert explain_status(status, body, has_api_key=has_key) == expected


def test_an_empty_body_is_just_the_status() -> None:
    assert explain_status(503, "", has_api_key=False) == "HTTP 503"
