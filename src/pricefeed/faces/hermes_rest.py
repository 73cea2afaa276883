"""A Hermes-compatible HTTP API: an app written for Pyth's Hermes points its base URL here and works.

Routes, parameters, status codes and text/plain error bodies follow Hermes
(reference/hermes.md sections 1 and 2); the stream is in ``hermes_sse.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from ..contracts import Handshake, Peer
from ..model import FeedId, PriceUpdate
from ..policy import Refusal
from ..transport.http import TakeOver
from ..transport.listener import Listener
from ..transport.sse import EventFormat, SseStream
from .hermes_json import (
    ASSET_TYPES,
    QueryError,
    feed_metadata,
    not_found,
    parse_asset_type,
    parse_bool,
    parse_encoding,
    parse_i64,
    parse_ids,
    price_feed,
    price_update_body,
)
from .hermes_sse import (
    KEEPALIVE_S,
    MAX_CONNECTION_S,
    SLOW_CONSUMER,
    TIMEOUT_24H,
    PriceStreamSession,
    StreamCursor,
    event_parts,
    parse_event_id,
)
from .services import Services

JSON = "application/json"
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
HERMES_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Hermes' text saying what is wrong with the request", "content": _TEXT},
    404: {"description": "Hermes' text naming the ids not found", "content": _TEXT}}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_BOOL = {"type": "boolean"}
_IDS = _query("ids[]", {"type": "array", "items": {"type": "string"}}, required=True)
_UPDATES_QUERY = [_IDS, _query("encoding", {"enum": ["hex", "base64"]}), _query("parsed", _BOOL),
                  _query("ignore_invalid_price_ids", _BOOL)]
"""The query of the ``/v2/updates/price/...`` routes, for the OpenAPI document (the handlers read it as Hermes
does, from the raw query)."""
_PUBLISH_TIME = {"name": "publish_time", "in": "path", "required": True, "schema": {"type": "integer"}}


@dataclass(frozen=True, slots=True)
class UpdatesQuery:
    """The query every ``/v2/updates/price/...`` endpoint takes."""

    ids: list[FeedId]
    encoding: str
    parsed: bool
    ignore_invalid: bool

    @classmethod
    def of(cls, request: Request) -> UpdatesQuery:
        params = request.query_params
        return cls(ids=parse_ids(params.multi_items()), encoding=parse_encoding(params.get("encoding")),
                   parsed=parse_bool(params.get("parsed"), True),
                   ignore_invalid=parse_bool(params.get("ignore_invalid_price_ids"), False))


def create_hermes_router(services: Services, streams: Listener) -> APIRouter:
    """Hermes' HTTP routes; event streams are handed to ``streams``, the API port's SSE listener."""
    router = APIRouter(tags=["Hermes-compatible"], responses=HERMES_ERRORS)
    hub = services.hub

    def hermes_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except QueryError as exc:
                return PlainTextResponse(str(exc), status_code=400)
        wrapped.__name__ = handler.__name__
        wrapped.__doc__ = handler.__doc__
        return wrapped

    def resolve(ids: list[FeedId], ignore_invalid: bool) -> tuple[list[PriceUpdate], list[FeedId]]:
        """The latest update of each id (in order), and the ids that have none."""
        found = [hub.latest[i] for i in ids if i in hub.latest and i in hub.feeds]
        missing = [i for i in ids if i not in hub.latest or i not in hub.feeds]
        return found, ([] if ignore_invalid else missing)

    @router.get("/v2/price_feeds", summary="Feed metadata (Hermes)", openapi_extra={"parameters": [
        _query("query", {"type": "string"}), _query("asset_type", {"enum": list(ASSET_TYPES)})]})
    @hermes_errors
    async def price_feeds(request: Request) -> Response:
        params = request.query_params
        query = params.get("query")
        asset_type = parse_asset_type(params.get("asset_type"))
        feeds = list(hub.feeds.values())
        if query is not None:
            feeds = [f for f in feeds if query.lower() in f.attributes.get("symbol", f.symbol).lower()]
        if asset_type is not None:
            feeds = [f for f in feeds if f.asset_type_key == asset_type]
        return Response(orjson.dumps([feed_metadata(f) for f in feeds]), media_type=JSON)

    @router.get("/v2/updates/price/latest", summary="Latest price updates (Hermes)",
                openapi_extra={"parameters": _UPDATES_QUERY})
    @hermes_errors
    async def latest(request: Request) -> Response:
        query = UpdatesQuery.of(request)
        updates, missing = resolve(query.ids, query.ignore_invalid)
        if missing:
            return PlainTextResponse(not_found(missing), status_code=404)
        return Response(price_update_body(updates, encoding=query.encoding, parsed=query.parsed), media_type=JSON)

    @router.get("/v2/updates/price/stream", summary="Price updates as Server-Sent Events (Hermes)")
    @hermes_errors
    async def stream(request: Request) -> Response:
        query = UpdatesQuery.of(request)
        parse_bool(request.query_params.get("allow_unordered"), False)  # we never deliver out of order anyway
        benchmarks_only = parse_bool(request.query_params.get("benchmarks_only"), False)
        unknown = [i for i in query.ids if i not in hub.feeds]
        if unknown and not query.ignore_invalid:
            return PlainTextResponse(not_found(unknown), status_code=404)
        known = [i for i in query.ids if i in hub.feeds]
        resume_from = parse_event_id(request.headers.get("last-event-id"), known)
        prefix, suffix = event_parts(query.encoding, query.parsed)
        event_format = EventFormat(prefix=prefix, suffix=suffix, show_items=query.parsed, keepalive_s=KEEPALIVE_S,
                                   max_age_s=MAX_CONNECTION_S, timeout_event=TIMEOUT_24H, slow_event=SLOW_CONSUMER,
                                   headers=((b"access-control-allow-origin", b"*"),),
                                   event_id=StreamCursor(hub, known).event_id)
        handshake = Handshake.of(str(request.url.path) + "?" + str(request.url.query), dict(request.headers))

        def session(peer: Peer) -> PriceStreamSession:
            assert isinstance(peer, SseStream)  # the stream is the session's peer
            return PriceStreamSession(hub, peer, known, benchmarks_only, services.recent, resume_from,
                                      peer.write_event)

        admitted = streams.admit_stream(handshake, request.client.host if request.client else None, known)
        if isinstance(admitted, Refusal):
            return PlainTextResponse(admitted.message, status_code=admitted.status)
        return TakeOver(lambda: SseStream(streams, handshake, event_format, session, admitted))

    @router.get("/v2/updates/price/{publish_time}", summary="Price updates at or after a time (Hermes)",
                openapi_extra={"parameters": [_PUBLISH_TIME, *_UPDATES_QUERY]})
    @hermes_errors
    async def at_time(request: Request) -> Response:
        raw = request.path_params["publish_time"]
        publish_time = parse_i64(raw)
        if publish_time is None:
            return PlainTextResponse(f"Invalid URL: Cannot parse `{raw}` to a `i64`", status_code=400)
        query = UpdatesQuery.of(request)
        unknown = [i for i in query.ids if i not in hub.feeds]
        if unknown and not query.ignore_invalid:
            return PlainTextResponse(not_found(unknown), status_code=404)
        updates = [services.history.first_at_or_after(i, publish_time) for i in query.ids if i in hub.feeds]
        if any(u is None for u in updates):
            return PlainTextResponse("Update data not found", status_code=404)
        found = [u for u in updates if u is not None]
        return Response(price_update_body(found, encoding=query.encoding, parsed=query.parsed), media_type=JSON)

    @router.get("/api/price_feed_ids", summary="Feed ids (Hermes, legacy)")
    async def price_feed_ids() -> Response:
        return Response(orjson.dumps(list(hub.feeds)), media_type=JSON)

    @router.get("/api/latest_price_feeds", summary="Latest price feeds (Hermes, legacy)", openapi_extra={
        "parameters": [_IDS, _query("verbose", _BOOL), _query("binary", _BOOL)]})
    @hermes_errors
    async def latest_price_feeds(request: Request) -> Response:
        params = request.query_params
        ids = parse_ids(params.multi_items())
        verbose = parse_bool(params.get("verbose"), False)
        parse_bool(params.get("binary"), False)  # no signed data to attach: `vaa` stays absent
        updates, missing = resolve(ids, ignore_invalid=False)
        if missing:
            return PlainTextResponse(not_found(missing), status_code=404)
        return Response(orjson.dumps([price_feed(u, verbose=verbose) for u in updates]), media_type=JSON)

    @router.get("/live", summary="Liveness (Hermes)", response_class=PlainTextResponse)
    async def live() -> PlainTextResponse:
        return PlainTextResponse("OK")

    @router.get("/ready", summary="Readiness (Hermes)", response_class=PlainTextResponse,
                responses={503: {"description": "Not ready, and why", "content": {JSON: {}}}})
    async def ready() -> Response:
        fresh = [f for f in hub.feeds if not hub.is_stale(f)]
        if fresh and not services.stopping():
            return PlainTextResponse("OK")
        newest = max((u.publish_time for u in hub.latest.values()), default=None)
        body = {"has_completed_recently": bool(fresh), "is_not_behind": bool(fresh),
                "is_metadata_loaded": bool(hub.feeds), "latest_completed_slot": None, "latest_observed_slot": None,
                "latest_completed_unix_timestamp": newest, "price_feeds_metadata_len": len(hub.feeds)}
        return Response(orjson.dumps(body), status_code=503, media_type=JSON)

    return router
