"""Provider answers for MockTransport handlers, and a scripted handler that checks the calls in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from shared.clients import Request, Response


def json_answer(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(status, {"Content-Type": "application/json", **(headers or {})}, orjson.dumps(body))


def query_of(request: Request) -> list[tuple[str, str]]:
    """The decoded query parameters, in order, repeated keys kept."""
    return parse_qsl(urlsplit(request.url).query, keep_blank_values=True)


def path_of(request: Request) -> str:
    return urlsplit(request.url).path


def json_of(request: Request) -> Any:
    return orjson.loads(request.body)


def scripted(*answers: Response) -> Callable[[Request], Response]:
    """A handler that answers the calls in order with `answers`; one call too many fails the test."""
    queue = list(answers)

    def handler(request: Request) -> Response:
        assert queue, f"unexpected extra call {request.method} {request.url}"
        return queue.pop(0)

    return handler


def company_settings_answer(request: Request) -> Response | None:
    """The accounts' settings reads (QBO preferences and companyinfo, HubSpot account-info) of a USD company in San
    Francisco and a USD portal on US/Eastern time; None for any other call."""
    path = path_of(request)
    if path.endswith("/preferences"):
        prefs = {"CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": {"value": "USD"}}}
        return json_answer(200, {"Preferences": prefs, "time": "2026-01-05T10:48:27.082-08:00"})
    if "/companyinfo/" in path:
        return json_answer(200, {"CompanyInfo": {"CompanyName": "Acme", "DefaultTimeZone": "America/Los_Angeles"}})
    if path.endswith("/account-info/v3/details"):
        return json_answer(200, {"portalId": 101, "companyCurrency": "USD", "additionalCurrencies": [],
                                 "timeZone": "US/Eastern"})  # fmt: skip
    return None
