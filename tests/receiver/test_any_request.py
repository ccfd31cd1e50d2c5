"""No request answers 500: random paths, query strings, headers (timestamps, signatures, content types and lengths),
credentials and bodies to every route of the receiver, and bodies of any JSON shape (numbers beyond 64 bits too)
correctly signed, so that the parsers behind the signature check see them too."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

from services.receiver import create_app
from shared import signatures
from tests.anyrequest import RAW, TEXT, call, headers, paths, queries
from tests.receiver.conftest import InMemoryPublisher, make_settings
from tests.receiver.test_hubspot import event
from tests.receiver.test_intuit import cloud_event

HOST = b"127.0.0.1:8080"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with some of its fields (or new ones) set to any JSON value, or dropped."""
    fields = st.sampled_from([*base, "objectId", "propertyValue", "data", "type", "occurredAt"]) | TEXT
    changes = st.dictionaries(fields, JSON | st.just(...), max_size=4)
    return changes.map(lambda given: {k: v for k, v in {**base, **given}.items() if v is not ...})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_no_request_answers_500(data: st.DataObject) -> None:
    settings_ = make_settings()
    app = create_app(settings_, InMemoryPublisher())
    assert isinstance(app, Starlette)
    templates = [route.path for route in app.routes if isinstance(route, Route)]
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "HEAD"]), "method")
    path = data.draw(paths(templates, ["hubspot", "intuit"]), "path")
    query = data.draw(queries(["a"]), "query")
    sent = data.draw(headers([HOST]), "headers")
    body = data.draw(RAW, "body")
    signed = data.draw(st.sampled_from([None, "hubspot", "intuit"]), "signed")
    assert settings_.hubspot_client_secret is not None
    assert settings_.intuit_verifier_token is not None
    as_json = [(b"host", HOST), (b"content-type", b"application/json")]
    if signed is not None:  # to its own route: the parsers behind the signature check see the body
        method, path = "POST", f"/webhooks/{signed}"
    if signed == "hubspot":
        body = json.dumps(data.draw(st.lists(mutated(event()), max_size=3) | JSON, "events")).encode()
        timestamp = str(int(time.time() * 1000))
        uri = f"http://{HOST.decode()}{path}" + (f"?{query.decode('latin-1')}" if query else "")
        signature = signatures.hubspot_v3(
            settings_.hubspot_client_secret.get_secret_value(), "POST", uri, body, timestamp
        )
        sent = [
            *as_json,
            (b"x-hubspot-request-timestamp", timestamp.encode()),
            (b"x-hubspot-signature-v3", signature.encode()),
        ]
    elif signed == "intuit":
        entity = {"name": "Customer", "id": "1", "operation": "Create", "lastUpdated": "2025-09-10T21:31:25.179Z"}
        classic = st.lists(mutated(entity), max_size=3).map(
            lambda entities: {"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": entities}}]}
        )
        body = json.dumps(data.draw(st.lists(mutated(cloud_event()), max_size=3) | classic | JSON, "events")).encode()
        signature = signatures.intuit(settings_.intuit_verifier_token.get_secret_value(), body)
        sent = [*as_json, (b"intuit-signature", signature.encode())]

    answer = await call(app, method, path, query=query, headers=sent, body=body)
    assert answer.status < 500, answer.text[:500]


async def test_the_inputs_that_once_answered_500_are_refused() -> None:
    """A timestamp or a Content-Length of digits that are not ASCII ("²"), a signature that is not ASCII, a query
    string that is not UTF-8."""
    app = create_app(make_settings(), InMemoryPublisher())
    json = (b"content-type", b"application/json")
    refused = {
        "timestamp": [json, (b"x-hubspot-request-timestamp", "²".encode()), (b"x-hubspot-signature-v3", b"x")],
        "signature": [json, (b"x-hubspot-request-timestamp", str(int(time.time() * 1000)).encode()),
                      (b"x-hubspot-signature-v3", "é".encode())],
        "length": [json, (b"content-length", "²".encode())],
    }  # fmt: skip
    for name, sent in refused.items():
        answer = await call(app, "POST", "/webhooks/hubspot", headers=sent, body=b"[]")
        assert answer.status == 401, name
    intuit = [json, (b"intuit-signature", "é".encode())]
    assert (await call(app, "POST", "/webhooks/intuit", headers=intuit, body=b"[]")).status == 401
    assert (await call(app, "GET", "/healthz", query=b"\x80")).status == 400
