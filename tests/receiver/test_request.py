"""A webhook request read straight off ASGI (`services/receiver/_request.py`), and the app's direct route to it."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest
from pydantic import AnyHttpUrl

from services.receiver import _request, create_app
from shared import signatures
from shared.errors import PayloadTooLarge, UnsupportedMediaType
from tests.anyrequest import call
from tests.receiver.conftest import InMemoryPublisher, make_settings
from tests.receiver.test_hubspot import event


def scope(**given: Any) -> dict[str, Any]:
    return {"scheme": "http", "path": "/webhooks/hubspot", "raw_path": b"/webhooks/hubspot", "query_string": b"",
            "server": ("10.0.0.5", 8080), **given}  # fmt: skip


def chunks(*parts: bytes, disconnect: bool = False) -> Any:
    messages = [
        {"type": "http.request", "body": part, "more_body": at < len(parts) - 1} for at, part in enumerate(parts)
    ]
    if disconnect:
        messages[-1:] = [{"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def test_read_headers_keeps_the_first_value_of_the_headers_a_handler_reads() -> None:
    raw = [(b"content-type", b"application/json"), (b"cookie", b"a=1"), (b"content-type", b"text/plain"),
           (b"intuit-signature", "é".encode())]  # fmt: skip
    assert _request.read_headers(raw) == {
        "content-type": "application/json",
        "intuit-signature": "Ã©",
    }  # Latin-1, as sent


def test_request_id_is_the_callers_up_to_64_characters_else_a_new_one() -> None:
    assert _request.request_id({"x-request-id": "x" * 100}) == "x" * 64
    fresh = {_request.request_id({}) for _ in range(3)} | {_request.request_id({"x-request-id": ""})}
    assert len(fresh) == 4


def test_signed_uri_is_the_public_url_and_the_raw_target_behind_a_proxy() -> None:
    given = scope(raw_path=b"/webhooks/hubspot", query_string=b"a=%3A")
    assert _request.signed_uri(given, {"host": "internal:8080"}, "https://hooks.example.com") == (
        "https://hooks.example.com/webhooks/hubspot?a=%3A"
    )


def test_signed_uri_is_what_this_server_saw_without_a_public_url() -> None:
    assert (
        _request.signed_uri(scope(), {"host": "hooks.example.com"}, None) == "http://hooks.example.com/webhooks/hubspot"
    )
    assert _request.signed_uri(scope(), {}, None) == "http://10.0.0.5:8080/webhooks/hubspot"
    assert _request.signed_uri(scope(server=("10.0.0.5", 80)), {}, None) == "http://10.0.0.5/webhooks/hubspot"


def test_check_content_refuses_other_types_and_declared_lengths_over_the_limit() -> None:
    allowed = frozenset({"application/json"})
    _request.check_content({"content-type": "Application/JSON; charset=utf-8", "content-length": "10"}, allowed, 10)
    with pytest.raises(UnsupportedMediaType):
        _request.check_content({"content-type": "text/plain"}, allowed, 10)
    with pytest.raises(PayloadTooLarge):
        _request.check_content({"content-type": "application/json", "content-length": "11"}, allowed, 10)
    _request.check_content(
        {"content-type": "application/json", "content-length": "²"}, allowed, 10
    )  # not digits: ignored


async def test_read_body_joins_chunks_and_refuses_a_body_growing_over_the_limit() -> None:
    assert await _request.read_body(chunks(b"[1,"), 10) == b"[1,"
    assert await _request.read_body(chunks(b"[1,", b"2]"), 10) == b"[1,2]"
    with pytest.raises(PayloadTooLarge):
        await _request.read_body(chunks(b"12345", b"678901"), 10)
    with pytest.raises(_request.Disconnected):
        await _request.read_body(chunks(b"[1,", b"", disconnect=True), 10)


async def test_respond_sends_json_with_its_length_and_the_request_id() -> None:
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await _request.respond(send, 503, b"{}", "req-1", ((b"retry-after", b"5"),))
    assert sent[0]["status"] == 503
    assert dict(sent[0]["headers"]) == {b"content-type": b"application/json", b"content-length": b"2",
                                        b"x-request-id": b"req-1", b"retry-after": b"5"}  # fmt: skip
    assert sent[1] == {"type": "http.response.body", "body": b"{}"}


async def test_other_methods_on_a_webhook_route_take_starlettes_stack() -> None:
    app = create_app(make_settings(), InMemoryPublisher())
    assert set(app.webhooks) == {"/webhooks/hubspot", "/webhooks/intuit"}
    assert (await call(app, "GET", "/webhooks/hubspot")).status == 405
    assert (await call(app, "POST", "/webhooks/nowhere")).status == 404


async def test_with_trusted_proxies_the_forwarded_scheme_is_the_one_signed() -> None:
    settings = make_settings(trusted_proxies=("127.0.0.1",))
    publisher = InMemoryPublisher()
    app = create_app(settings, publisher)
    assert app.webhooks == {}  # every request through the stack, for its proxy headers' middleware
    assert settings.hubspot_client_secret is not None
    body, timestamp = orjson.dumps([event()]), str(int(time.time() * 1000))
    uri = "https://hooks.example.com/webhooks/hubspot"
    signature = signatures.hubspot_v3(settings.hubspot_client_secret.get_secret_value(), "POST", uri, body, timestamp)
    headers = [(b"host", b"hooks.example.com"), (b"x-forwarded-proto", b"https"),
               (b"content-type", b"application/json"), (b"x-hubspot-request-timestamp", timestamp.encode()),
               (b"x-hubspot-signature-v3", signature.encode())]  # fmt: skip
    answer = await call(app, "POST", "/webhooks/hubspot", headers=headers, body=body)
    assert answer.status == 200, answer.text
    assert len(publisher.published) == 1


async def test_the_public_urls_trailing_slash_is_dropped() -> None:
    settings = make_settings(public_url=AnyHttpUrl("https://hooks.example.com/"))
    app = create_app(settings, InMemoryPublisher())
    assert app.webhooks["/webhooks/hubspot"].public_url == "https://hooks.example.com"
