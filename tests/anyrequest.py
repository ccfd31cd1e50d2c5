"""Requests sent in-process to an ASGI app, exactly as given (any Host, header, path or body: aiohttp would refuse to
send some), and hypothesis strategies for any request a stranger could send."""

from __future__ import annotations

import base64
import dataclasses
import re
import urllib.parse
from collections.abc import MutableMapping, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st
from starlette.types import ASGIApp


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v.decode("latin-1") for k, v in self.headers if k.decode("latin-1").lower() == name), None)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def csrf_token(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.text)
        assert found, "no CSRF token on the page"
        return found.group(1)


async def call(
    app: ASGIApp,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> Answer:
    """One request, in-process; Host defaults to 127.0.0.1:8081 unless `headers` has one."""
    if not any(name.lower() == b"host" for name, _ in headers):
        headers = [(b"host", b"127.0.0.1:8081"), *headers]
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": urllib.parse.quote(path, safe="/%").encode("ascii", "replace"), "root_path": "",
        "query_string": query, "headers": [(name.lower(), value) for name, value in headers],
        "server": ("127.0.0.1", 8081), "client": client,
    }  # fmt: skip
    sent = False
    started: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(started["status"], list(started.get("headers", [])), b"".join(chunks))


T = TypeVar("T")

# --- any request -------------------------------------------------------------------------------------------------

# Text a stranger types or a tool sends: any character but surrogates (which no server decodes a request into), with
# the ones that broke pages before (a superscript digit, non-ASCII, NUL) drawn often.
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.sampled_from(["", "²", "1", "0", "-1", "99999999999999999999", "é", "\x00", "..", "%", "null", "[]", "a" * 300]),
)
RAW = st.one_of(st.binary(max_size=60), TEXT.map(lambda text: text.encode("utf-8")))
METHODS = st.sampled_from(["GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"])
HEADER_NAMES = ["accept", "authorization", "cookie", "content-type", "content-length", "origin", "referer",
                "x-csrf-token", "x-forwarded-for", "x-forwarded-proto", "x-request-id", "x-hubspot-request-timestamp",
                "x-hubspot-signature-v3", "x-hubspot-signature", "x-hubspot-signature-version", "intuit-signature",
                "if-none-match", "range"]  # fmt: skip


def mostly(usual: st.SearchStrategy[T], other: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`usual` nine times in ten: most requests should get past the first check to reach the code behind it."""
    return st.integers(0, 9).flatmap(lambda roll: other if roll == 0 else usual)


def credentials() -> st.SearchStrategy[bytes]:
    """An Authorization header: Basic with any user and password in any encoding, or anything at all."""
    encoded = st.one_of(
        st.tuples(TEXT, TEXT).map(lambda pair: f"{pair[0]}:{pair[1]}".encode()),
        st.tuples(TEXT, TEXT).map(lambda pair: f"{pair[0]}:{pair[1]}".encode("latin-1", "replace")),
        st.binary(max_size=40),
    ).map(lambda raw: b"Basic " + base64.b64encode(raw))
    return st.one_of(encoded, RAW, RAW.map(lambda raw: b"Basic " + raw))


def headers(hosts: Sequence[bytes]) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """A Host (mostly one of `hosts`, so the request goes on past the allow-list), then any of the headers pages and
    webhooks read, with any value."""
    host = mostly(st.sampled_from(list(hosts)), RAW)
    named = st.tuples(st.sampled_from(HEADER_NAMES).map(str.encode), RAW)
    auth = st.tuples(st.just(b"authorization"), credentials())
    return st.tuples(host, st.lists(st.one_of(named, auth), max_size=6)).map(lambda h: [(b"host", h[0]), *h[1]])


def queries(keys: Sequence[str]) -> st.SearchStrategy[bytes]:
    """A query string: `keys` (the ones pages read) and others with any values, or any bytes."""
    key = st.one_of(st.sampled_from(list(keys)), TEXT)
    pairs = st.lists(st.tuples(key, TEXT), max_size=5).map(lambda items: urllib.parse.urlencode(items).encode())
    return st.one_of(pairs, st.binary(max_size=40))


def forms(fields: Sequence[str]) -> st.SearchStrategy[tuple[bytes, bytes]]:
    """A body and its content type: a form of `fields` and others with any values, a broken multipart body, or
    any bytes as any type."""
    pairs = st.lists(st.tuples(st.one_of(st.sampled_from(list(fields)), TEXT), TEXT), max_size=6)
    urlencoded = pairs.map(lambda items: (b"application/x-www-form-urlencoded", urllib.parse.urlencode(items).encode()))
    multipart = RAW.map(lambda raw: (b"multipart/form-data; boundary=xyz", b"--xyz\r\n" + raw + b"\r\n--xyz--\r\n"))
    anything = st.tuples(RAW, st.binary(max_size=80))
    return st.one_of(urlencoded, multipart, anything)


def paths(templates: Sequence[str], segments: Sequence[str]) -> st.SearchStrategy[str]:
    """A route's path with its {parameters} filled by `segments` or any text, or any path at all."""
    segment = st.one_of(st.sampled_from(list(segments)), TEXT.map(lambda text: text.replace("/", "")))

    def filled(template: str) -> st.SearchStrategy[str]:
        parts = re.split(r"\{[^}]+\}", template)
        return st.lists(segment, min_size=len(parts) - 1, max_size=len(parts) - 1).map(
            lambda values: "".join(part + value for part, value in zip(parts, [*values, ""], strict=True))
        )

    return mostly(st.sampled_from(list(templates)).flatmap(filled), TEXT.map(lambda text: "/" + text))
