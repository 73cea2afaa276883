"""Hermes' HTTP queries (faces/hermes_rest.py, hermes_json.py) under arbitrary query strings and paths, in-process
on the ASGI app: ``ids[]``, ``encoding``, ``parsed``, ``ignore_invalid_price_ids``, ``verbose``, ``asset_type``
and the publish time are read as Hermes reads them. A bad query gets Hermes' 400 text (``Failed to deserialize
query string. Error: ...``), unknown ids its 404 text, and a good query exactly the prices asked for, in order."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from pricefeed.faces.hermes_json import ASSET_TYPES, QueryError, parse_id, parse_ids
from pricefeed.model import parse_feed_id

from .service import BTC, ETH, PRICED, SOL, START_S, built, rest_app
from .strategies import ids_as_written

KNOWN = [BTC, ETH, SOL]
LOOP = asyncio.new_event_loop()
APP = rest_app(built(Path(tempfile.mkdtemp(prefix="pricefeed-fuzz-"))))
BOOLS = st.sampled_from(["true", "false", "True", "1", ""]) | st.text(max_size=6)
VALUES = {
    "ids[]": ids_as_written(KNOWN), "ids[0]": ids_as_written(KNOWN), "ids": ids_as_written(KNOWN),
    "ids[x]": ids_as_written(KNOWN), "encoding": st.sampled_from(["hex", "base64", "HEX", ""]) | st.text(max_size=6),
    "parsed": BOOLS, "ignore_invalid_price_ids": BOOLS, "verbose": BOOLS, "binary": BOOLS,
    "asset_type": st.sampled_from([*ASSET_TYPES, "Crypto", ""]) | st.text(max_size=8),
    "query": st.sampled_from(["btc", "BTC/", "usd", ""]) | st.text(max_size=8), "other": st.text(max_size=8),
}
PAIRS = st.lists(st.sampled_from(sorted(VALUES)).flatmap(lambda key: st.tuples(st.just(key), VALUES[key])),
                 max_size=6)
DESERIALIZE = "Failed to deserialize query string. Error: "


def get(path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://hermes") as client:
            return await client.get(path + "?" + urlencode(pairs))

    return LOOP.run_until_complete(run())


class Query:
    """What Hermes makes of a query string: the ids asked for, or why it is refused (400)."""

    def __init__(self, pairs: list[tuple[str, str]], bools: tuple[str, ...]) -> None:
        self.params = QueryParams(urlencode(pairs))
        self.ids: list[str] = []
        self.bad = "ids" in self.params  # Hermes wants ids[]
        listed = [value for key, value in self.params.multi_items() if _listed_id(key)]
        for value in listed:
            try:
                feed_id = parse_feed_id(value)
            except ValueError:
                self.bad = True
                continue
            if feed_id not in self.ids:
                self.ids.append(feed_id)
        self.bad |= not listed or any(self.params.get(name, "true") not in ("true", "false") for name in bools)

    def flag(self, name: str, default: bool) -> bool:
        return self.params.get(name, "true" if default else "false") == "true"


def _listed_id(key: str) -> bool:
    """``ids[]`` or ``ids[0]``."""
    return key == "ids[]" or (key.startswith("ids[") and key.endswith("]") and key[4:-1].isdigit())


def check_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/plain") and response.text.startswith(DESERIALIZE)


def check_not_found(response: httpx.Response, missing: list[str]) -> None:
    assert response.status_code == 404
    assert response.text == "Price ids not found: " + ", ".join("0x" + i for i in missing)


def check_parsed(body: dict[str, Any], query: Query, ids: list[str]) -> None:
    encoding = query.params.get("encoding", "hex")
    assert body["binary"] == {"encoding": encoding, "data": []}
    if query.flag("parsed", True):
        assert [item["id"] for item in body["parsed"]] == ids
    else:
        assert "parsed" not in body


@given(PAIRS)
@example([("ids", BTC)])  # Hermes wants ids[]
@example([("ids[]", BTC), ("ids[]", "0x" + SOL.upper()), ("ignore_invalid_price_ids", "true")])
def test_latest_prices(pairs: list[tuple[str, str]]) -> None:
    query = Query(pairs, ("parsed", "ignore_invalid_price_ids"))
    bad_encoding = query.params.get("encoding", "hex") not in ("hex", "base64")
    response = get("/v2/updates/price/latest", pairs)
    if query.bad or bad_encoding:
        check_400(response)
        return
    missing = [i for i in query.ids if i not in PRICED]
    if missing and not query.flag("ignore_invalid_price_ids", False):
        check_not_found(response, missing)
        return
    assert response.status_code == 200
    check_parsed(response.json(), query, [i for i in query.ids if i in PRICED])


TIMES = st.integers(START_S - 3, START_S + 12).map(str) | st.sampled_from(
    ["1_764_000_003", " 1764000003", "+1764000003", "١٢", "9223372036854775808", "-9223372036854775808", "0x10"]) \
    | st.text(max_size=10).filter(lambda t: "/" not in t)  # an encoded "/" would be a path of another route


@given(TIMES, PAIRS)
@example("1_764_000_003", [("ids[]", BTC)])  # Python's int() takes it, Rust's i64 does not: was answered 200
@example("99999999999999999999", [("ids[]", BTC)])  # beyond i64: was answered 404 instead of 400
def test_prices_at_a_time(raw: str, pairs: list[tuple[str, str]]) -> None:
    response = get("/v2/updates/price/" + quote(raw, safe=""), pairs)
    if raw in ("", "latest", "stream", ".", ".."):
        return  # another route (or none)
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    if not (digits.isascii() and digits.isdigit() and -(2**63) <= int(raw) < 2**63):
        assert response.status_code == 400 and response.text == f"Invalid URL: Cannot parse `{raw}` to a `i64`"
        return
    query = Query(pairs, ("parsed", "ignore_invalid_price_ids"))
    if query.bad or query.params.get("encoding", "hex") not in ("hex", "base64"):
        check_400(response)
        return
    unknown = [i for i in query.ids if i not in KNOWN]
    if unknown and not query.flag("ignore_invalid_price_ids", False):
        check_not_found(response, unknown)
        return
    asked = [i for i in query.ids if i in KNOWN]
    kept = START_S - 1 <= int(raw) <= START_S + 9  # a time before the history kept is a miss, as in Hermes
    if any(i not in PRICED for i in asked) or not kept:
        assert (response.status_code, response.text) == (404, "Update data not found")
        return
    assert response.status_code == 200
    body = response.json()
    check_parsed(body, query, asked)
    for item in body.get("parsed", []):
        assert item["price"]["publish_time"] == max(int(raw), START_S)


@given(PAIRS)
def test_latest_price_feeds_legacy(pairs: list[tuple[str, str]]) -> None:
    query = Query(pairs, ("verbose", "binary"))
    response = get("/api/latest_price_feeds", pairs)
    if query.bad:
        check_400(response)
        return
    missing = [i for i in query.ids if i not in PRICED]
    if missing:
        check_not_found(response, missing)
        return
    assert response.status_code == 200
    feeds = response.json()
    assert [f["id"] for f in feeds] == query.ids
    assert all(("metadata" in f) == query.flag("verbose", False) for f in feeds)


@given(PAIRS)
def test_price_feed_metadata(pairs: list[tuple[str, str]]) -> None:
    params = QueryParams(urlencode(pairs))
    response = get("/v2/price_feeds", pairs)
    asset_type = params.get("asset_type")
    if asset_type is not None and asset_type not in ASSET_TYPES:
        check_400(response)
        assert f"unknown variant `{asset_type}`" in response.text
        return
    assert response.status_code == 200
    wanted = params.get("query", "").lower()
    expected = [i for i in KNOWN if wanted in APP_SYMBOLS[i].lower() and asset_type in (None, "crypto")]
    assert [f["id"] for f in response.json()] == expected


APP_SYMBOLS = {BTC: "Crypto.BTC/USD", ETH: "Crypto.ETH/USD", SOL: "Crypto.SOL/USD"}


@given(st.text(max_size=70))
def test_ids_parse_or_get_hermes_error(text: str) -> None:
    try:
        feed_id = parse_id(text)
    except QueryError as exc:
        assert str(exc).startswith(DESERIALIZE)
    else:
        assert len(feed_id) == 64 and int(feed_id, 16) >= 0


@given(st.binary(min_size=32, max_size=32), st.booleans())
def test_ids_round_trip(raw: bytes, prefixed: bool) -> None:
    text = ("0x" if prefixed else "") + raw.hex()
    assert parse_ids([("ids[]", text)]) == [raw.hex()]
