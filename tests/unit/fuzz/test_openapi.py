"""schemathesis against the REST faces' own OpenAPI documents, in-process on their ASGI apps: the API port
(``/openapi.json`` of faces/rest.py with the Hermes and Lazer routes) and the stream service's ``/alerts`` and
``/portfolio``. No answer is a 5xx; every answer's status, content type and body conform to the document."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from pricefeed.faces.streams.endpoints import ENDPOINTS
from pricefeed.faces.streams.http import create_streams_app
from pricefeed.faces.streams.messages import now_iso
from pricefeed.faces.streams.symbols import SymbolIndex
from pricefeed.policy import OriginPolicy

from .service import built, rest_app

APP = built(Path(tempfile.mkdtemp(prefix="pricefeed-fuzz-")))
STREAM_LISTENERS = [(e, next(li for li in APP.listeners.listeners if li.face == e.face)) for e in ENDPOINTS]
API = schemathesis.openapi.from_asgi("/openapi.json", rest_app(APP))
STREAMS = schemathesis.openapi.from_asgi("/openapi.json", create_streams_app(
    APP.services, STREAM_LISTENERS, OriginPolicy.of(["*"]), now_iso, SymbolIndex(APP.hub.feeds)))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = max(3, settings.default.max_examples // 8)
"""Per operation: 5 in the default run, 250 with scripts/test-slow's profile."""
BOUNDED = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@API.exclude(path_regex=r"/stream$").parametrize()  # event streams are taken over by the server, not the app
@BOUNDED
def test_the_api_port_answers_as_its_openapi_says(case: schemathesis.Case) -> None:
    # /ready's 503 is Hermes' "not ready" (here: the prices are old), which its document says.
    case.call_and_validate(checks=CHECKS[1:] if case.path == "/ready" else CHECKS)


@STREAMS.parametrize()
@BOUNDED
def test_the_stream_services_rest_answers_as_its_openapi_says(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
