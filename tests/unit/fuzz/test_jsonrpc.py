"""pythd JSON-RPC (faces/jsonrpc.py, rpc_*.py) under arbitrary frames: every request gets the JSON-RPC 2.0 answer
its form calls for (-32700 for what is not JSON, -32600 for what is not a request, -32601 for an unknown method,
-32602 for bad params, pythd's -32000/-32001), with the id rules: the request's id echoed, ``null`` when it could
not be read, no answer to a notification; a batch is answered with one array, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.faces.jsonrpc import METHODS

from ..test_jsonrpc import BTC_PRICE, DEMO_PRICE, DEMO_PRODUCT, World
from .strategies import JSON, dumps, errors_logged, frames

ACCOUNTS = st.sampled_from([BTC_PRICE, DEMO_PRICE, DEMO_PRODUCT, "11111111111111111111111111111111"]) | JSON
PARAM_VALUES = ACCOUNTS | st.sampled_from(["trading", "halted", "", "12", "1.5"]) | st.integers()
PARAMS = st.one_of(
    JSON,
    st.lists(PARAM_VALUES, max_size=5),
    st.fixed_dictionaries({}, optional={"account": ACCOUNTS, "price": PARAM_VALUES, "conf": PARAM_VALUES,
                                        "status": PARAM_VALUES}),
)
IDS = st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8) | st.floats(allow_nan=False,
                                                                                      allow_infinity=False)
REQUESTS = st.fixed_dictionaries({}, optional={
    "jsonrpc": st.just("2.0") | JSON, "method": st.sampled_from([*METHODS, "notify_price", "nope"]) | JSON,
    "params": PARAMS, "id": IDS | JSON})
ALLOWED = {  # what each method may answer besides its result
    "get_product_list": {-32602}, "get_all_products": {-32602},
    "get_product": {-32602, -32000},
    "update_price": {-32602, -32000, -32001, -32603},  # -32603 only as "quote not stored" (checked below)
    "subscribe_price": {-32602, -32000}, "subscribe_price_sched": {-32602, -32000},
}


def expected_id(request: Any) -> tuple[bool, Any]:
    """Whether a request that is well-formed is answered, and the id of its answer."""
    if not isinstance(request, dict) or not _readable(request.get("id")):
        return True, None
    return "id" in request, request.get("id")


def check_reply(request: Any, reply: Any) -> None:
    """One request's reply (None: not answered) has the form and the code its request calls for."""
    answered, reply_id = expected_id(request)
    if reply is None:
        assert not answered or (_invalid(request) is None and _method(request) is not None), request
        return
    assert reply["jsonrpc"] == "2.0"
    problem = _invalid(request)
    if problem is not None:
        assert list(reply) == ["jsonrpc", "error", "id"] and reply["error"]["code"] == -32600, (request, reply)
        assert reply["id"] == (None if problem == "id" else reply_id)
        return
    assert answered and reply["id"] == reply_id, (request, reply)
    method = _method(request)
    if "error" in reply:
        assert list(reply) == ["jsonrpc", "error", "id"] and reply["error"]["message"]
        code = reply["error"]["code"]
        if method is None:
            assert code == -32601, (request, reply)
        elif not isinstance(request.get("params"), dict | list | None):
            assert code == -32602, (request, reply)
        else:
            assert code in ALLOWED[method], (request, reply)
            if code == -32603:
                assert reply["error"]["message"].startswith("quote not stored: ")
    else:
        assert list(reply) == ["jsonrpc", "result", "id"] and method is not None, (request, reply)


def _invalid(request: Any) -> str | None:
    """Why a request is not a JSON-RPC request object: "id" (its id unreadable), "form", or None."""
    if not isinstance(request, dict) or not _readable(request.get("id")):
        return "id"
    if request.get("jsonrpc", "2.0") != "2.0" or not isinstance(request.get("method"), str):
        return "form"
    return None


def _readable(request_id: Any) -> bool:
    return not isinstance(request_id, bool) and isinstance(request_id, str | int | float | None)


def _method(request: dict[str, Any]) -> str | None:
    method = request.get("method")
    return method if method in ALLOWED else None


LOOP = asyncio.new_event_loop()
"""subscribe_price_sched schedules its notifications on the running loop."""


def replies_to(frame: bytes) -> list[Any]:
    async def run() -> list[Any]:
        world = World()
        session, peer = world.session()
        session.receive_text(frame)
        assert peer.closed_with is None
        session.closed()
        return peer.take()

    return LOOP.run_until_complete(run())


@given(frames(REQUESTS | st.lists(REQUESTS, max_size=4)))
@example(b"[]")
@example(b'[{"jsonrpc": "2.0", "method": "get_product_list"}]')  # all notifications: no answer
@example(dumps({"jsonrpc": "2.0", "method": "update_price", "id": 1,
                "params": {"account": DEMO_PRICE, "price": 1e300, "conf": 1, "status": "trading"}}))
def test_every_request_gets_the_json_rpc_answer_its_form_calls_for(frame: bytes) -> None:
    with errors_logged() as errors:
        replies = replies_to(frame)
    assert errors == [], "an exception reached the session"
    notifications = [r for r in replies if "method" in r]  # subscribe_price's first notify_price follows its reply
    replies = [r for r in replies if "method" not in r]
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        assert len(replies) == 1 and replies[0]["error"]["code"] == -32700 and replies[0]["id"] is None
        assert replies[0]["error"]["message"].startswith("parse error: ")
        return
    if not isinstance(message, list):
        (reply,) = replies or [None]
        check_reply(message, reply)
        return
    if not message:
        assert replies == [[]]
        return
    answered = [r for r in message if _answered(r)]
    if not answered:
        assert replies == []
        return
    (array,) = replies
    assert len(array) == len(answered)
    for request, reply in zip(answered, array, strict=True):
        check_reply(request, reply)
    assert all(n["method"] == "notify_price" for n in notifications)


def _answered(request: Any) -> bool:
    """Whether a request of a batch gets an entry in the answer array."""
    answered, _ = expected_id(request)
    return bool(answered or _invalid(request) is not None)


RESULT_OF = {
    "get_product": ({"account": DEMO_PRODUCT}, lambda r: r["account"] == DEMO_PRODUCT),
    "update_price": ({"account": DEMO_PRICE, "price": 42, "conf": 2, "status": "trading"}, lambda r: r == 0),
    "subscribe_price": ({"account": BTC_PRICE}, lambda r: r == {"subscription": 1}),
    "subscribe_price_sched": ({"account": DEMO_PRICE}, lambda r: r == {"subscription": 1}),
    "get_product_list": ([], lambda r: len(r) == 2),
    "get_all_products": ({}, lambda r: len(r) == 2),
}


@given(st.sampled_from(sorted(RESULT_OF)), IDS, st.booleans())
def test_a_valid_request_gets_its_result_with_its_id(method: str, request_id: Any, positional: bool) -> None:
    params, good = RESULT_OF[method]
    if positional and isinstance(params, dict):
        params = list(params.values())
    replies = replies_to(dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}))
    reply = replies[0]
    assert list(reply) == ["jsonrpc", "result", "id"] and reply["id"] == request_id and good(reply["result"])
