"""A webhook request read straight off ASGI, and its answer written straight back.

The two webhook routes are bare ASGI endpoints: Starlette's Request and Response objects, its exception wrappers and
a request-id middleware were a fifth of a single-event request's time in a profile, for a handler that reads a few
headers and one body and answers a small JSON document. Everything else the receiver serves stays plain Starlette.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Iterable, Mapping, Sequence

from starlette.types import Receive, Scope, Send

from shared.errors import PayloadTooLarge, UnsupportedMediaType

# The request headers a webhook handler reads (ASGI names are lower case). Others are never decoded.
READ_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"host",
        b"x-request-id",
        b"x-hubspot-signature-v3",
        b"x-hubspot-request-timestamp",
        b"x-hubspot-signature",
        b"intuit-signature",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

# New request ids: this process's random prefix and a counter. Unique without a system call per request (a uuid4 was
# one, and a profile's visible share); an id only finds log lines, it grants nothing.
_REQUEST_ID_PREFIX = secrets.token_hex(8)
_request_numbers = itertools.count(1)


def new_request_id() -> str:
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):08x}"


class Disconnected(Exception):
    """The client went away before its body was read: there is no one to answer."""


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What a webhook handler reads of a request."""

    method: str
    uri: str  # the URI the sender signed (HubSpot v3): the public base URL when behind a proxy
    headers: Mapping[str, str]  # READ_HEADERS only, the first value of each, decoded as Latin-1 (as Starlette does)
    body: bytes
    request_id: str  # the caller's X-Request-Id (64 characters at most), else a new one


def read_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in raw:
        if name in READ_HEADERS:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def request_id(headers: Mapping[str, str]) -> str:
    return headers.get("x-request-id", "")[:64] or new_request_id()


def signed_uri(scope: Scope, headers: Mapping[str, str], public_url: str | None) -> str:
    """The URI HubSpot signed: `public_url` and the raw target when behind a proxy, else the URL this server saw
    (scheme, Host header or server address, raw path and query as they came)."""
    target: bytes = scope.get("raw_path") or scope["path"].encode()
    query: bytes = scope.get("query_string", b"")
    path = target.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    if public_url is not None:
        return public_url + path
    scheme: str = scope.get("scheme", "http")
    host = headers.get("host")
    if host is None:
        server = scope.get("server")
        if server is None:
            return path
        name, port = server
        host = name if port == _DEFAULT_PORTS.get(scheme) else f"{name}:{port}"
    return f"{scheme}://{host}{path}"


def check_content(headers: Mapping[str, str], allowed_types: frozenset[str], limit: int) -> None:
    """415 for a content type the route does not take, 413 for a declared length over `limit` bytes."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in allowed_types:
        raise UnsupportedMediaType(f"content type '{content_type[:60]}' is not one of {sorted(allowed_types)}")
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it grows over `limit` bytes whatever its declared length."""
    chunks = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        if not chunks and not message.get("more_body", False) and len(chunk) <= limit:
            return bytes(chunk)  # the usual case: one chunk, no copy
        chunks += chunk
        if len(chunks) > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        if not message.get("more_body", False):
            return bytes(chunks)


async def respond(
    send: Send, status: int, body: bytes, request_id: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON answer carrying the request id."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
