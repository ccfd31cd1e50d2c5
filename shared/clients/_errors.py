"""Turn a provider's error answer into a typed `ApiError` (see the tree in `shared/errors.py`).

HubSpot answers errors with an HTTP status and a JSON body (`category`, `message`, `correlationId`); a call outside
the token's scopes is a 403 `MISSING_SCOPES` naming them in `errors[].context.requiredGranularScopes` (older
answers: `requiredScopes`; the spec's `Error` example: `context.missingScopes`). QBO answers with
a `Fault` (`type`, `Error[].code/Message/Detail`) inside a 400/401/403/429/5xx, inside a 200 for batch items, and
sometimes as XML even when JSON was asked for (throttling, auth). The most specific signal wins: a QBO Fault code,
then the HTTP status, then the Fault type.
"""

from __future__ import annotations

import email.utils
import re
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

from shared import money
from shared.clients._transport import Response
from shared.domain import Provider
from shared.errors import (
    ApiError,
    AuthRevoked,
    Conflict,
    DuplicateDocNumber,
    DuplicateName,
    Forbidden,
    MissingScopes,
    NotFound,
    RateLimited,
    ServerError,
    StaleObject,
    Unauthorized,
    ValidationFailed,
)

_MAX_MESSAGE_CHARS = 500  # provider messages can quote submitted values; keep them short in errors and logs

_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: ServerError,
    409: Conflict,
    410: NotFound,
    429: RateLimited,
}

# HubSpot 207 batch errors carry a category but no HTTP status.
_HUBSPOT_CATEGORIES: dict[str, type[ApiError]] = {
    "OBJECT_NOT_FOUND": NotFound,
    "VALIDATION_ERROR": ValidationFailed,
    "CONFLICT": Conflict,
    "RATE_LIMITS": RateLimited,
}
_HUBSPOT_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")  # 409 on create: "Contact already exists. Existing ID: 12"
_HUBSPOT_VALUE_TAKEN = re.compile(r"(\d+) already has that value")  # 400 on a unique property collision
_HUBSPOT_LOCKED_SECONDS = 2.0  # 423: concurrent upserts of the same records; HubSpot's locks last 2 s
_HUBSPOT_DAILY_LIMIT_PROBE_SECONDS = 3600.0  # the daily cap resets at the account's midnight, a zone we don't know
_HUBSPOT_BURST_WINDOW_SECONDS = 10.0  # TEN_SECONDLY_ROLLING, when X-HubSpot-RateLimit-Interval-Milliseconds is absent

_QBO_CODES: dict[str, type[ApiError]] = {
    "610": NotFound,  # Object Not Found: deleted, or a referenced record was made inactive
    "3001": RateLimited,  # ThrottleExceeded
    "3100": Forbidden,  # ApplicationAuthorizationFailed
    "3200": Unauthorized,  # AuthenticationFailed
    "5010": StaleObject,
    "6140": DuplicateDocNumber,  # "Duplicate Doc Num" (handling-common-errors; a 2017 blog says 6210 by mistake)
    "6190": Forbidden,  # Invalid Company Status: the subscription ended; a person must act
    "6240": DuplicateName,
}
_QBO_FAULT_TYPES: dict[str, type[ApiError]] = {
    "validationfault": ValidationFailed,
    "systemfault": ServerError,
    "authenticationfault": Unauthorized,
    "authentication": Unauthorized,
    "authorizationfault": Forbidden,
    "authorizatonfault": Forbidden,  # sic, in Intuit's XSD
}
_QBO_THROTTLE_SECONDS = 60.0  # Intuit: on 429 wait 60 s; no Retry-After is documented


def error_for_status(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


def retry_after_seconds(response: Response, *, now: float | None = None) -> float | None:
    """`Retry-After` in seconds, whether given as a number or as an HTTP date."""
    value = response.header("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[: _MAX_MESSAGE_CHARS - 1] + "…"


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        parsed = money.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return {}
    return parsed if isinstance(parsed, dict) else {}


# --- HubSpot ------------------------------------------------------------------------------------------------------


def hubspot_error(response: Response) -> ApiError:
    body = _json_object(response.body)
    message = _short(str(body.get("message") or f"HTTP {response.status}"))
    fields: dict[str, Any] = {
        "provider": Provider.HUBSPOT,
        "status": response.status,
        "code": body.get("category") or body.get("errorType"),
        "trace_id": body.get("correlationId"),
    }
    if response.status == 429:
        return RateLimited(message, retry_after=_hubspot_rate_limit_wait(response, body), **fields)
    if response.status == 423:
        return RateLimited(message, retry_after=retry_after_seconds(response) or _HUBSPOT_LOCKED_SECONDS, **fields)
    if response.status == 477:  # Migration in Progress: always carries Retry-After
        return RateLimited(message, retry_after=retry_after_seconds(response), **fields)
    if response.status == 403 and fields["code"] == "MISSING_SCOPES":
        return MissingScopes(message, scopes=_hubspot_named_scopes(body), **fields)
    return _hubspot_classified(error_for_status(response.status), message, fields)


_HUBSPOT_SCOPE_KEYS = ("requiredGranularScopes", "requiredScopes", "missingScopes")


def _hubspot_named_scopes(body: Mapping[str, Any]) -> tuple[str, ...]:
    """Every scope a MISSING_SCOPES answer names, in its order, wherever it puts them."""
    errors = body.get("errors")
    details = [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []
    contexts = [body.get("context"), *(detail.get("context") for detail in details)]
    named: list[str] = []
    for context in (context for context in contexts if isinstance(context, dict)):
        for key in _HUBSPOT_SCOPE_KEYS:
            values = context.get(key)
            for scope in values if isinstance(values, list) else ():
                if isinstance(scope, str) and scope and scope not in named:
                    named.append(scope)
    return tuple(named)


def hubspot_batch_error(item: Mapping[str, Any]) -> ApiError:
    """One entry of a 207 answer's `errors`; `ids` are the records it is about, or the inputs it names by their
    `objectWriteTraceId`."""
    message = _short(str(item.get("message") or "batch item failed"))
    category = str(item.get("category") or "")
    context = item.get("context") or {}
    fields: dict[str, Any] = {
        "provider": Provider.HUBSPOT,
        "code": category or None,
        "ids": tuple(str(i) for key in ("ids", "objectWriteTraceId") for i in context.get(key, ())),
    }
    return _hubspot_classified(_HUBSPOT_CATEGORIES.get(category, ApiError), message, fields)


def _hubspot_classified(kind: type[ApiError], message: str, fields: dict[str, Any]) -> ApiError:
    taken = _HUBSPOT_EXISTING_ID.search(message) or _HUBSPOT_VALUE_TAKEN.search(message)
    if kind is Conflict or (kind is ValidationFailed and taken):
        return Conflict(message, existing_id=taken.group(1) if taken else None, **fields)
    return kind(message, **fields)


def _hubspot_rate_limit_wait(response: Response, body: Mapping[str, Any]) -> float:
    explicit = retry_after_seconds(response)
    if explicit is not None:
        return explicit
    policy = str(body.get("policyName", "")).upper()
    if policy == "DAILY":
        return _HUBSPOT_DAILY_LIMIT_PROBE_SECONDS
    if policy == "SECONDLY":  # the search limit: a rolling second
        return 1.0
    interval_ms = response.header("X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        return float(interval_ms) / 1000 if interval_ms else _HUBSPOT_BURST_WINDOW_SECONDS
    except ValueError:
        return _HUBSPOT_BURST_WINDOW_SECONDS


# --- QuickBooks Online --------------------------------------------------------------------------------------------


def qbo_fault(response: Response) -> Mapping[str, Any] | None:
    """The `Fault` of a QBO answer, JSON or XML, or None when it carries none."""
    body = response.body.lstrip()
    if body.startswith(b"<"):
        return _qbo_xml_fault(body)
    fault = _json_object(body).get("Fault")
    return fault if isinstance(fault, dict) else None


def qbo_error(response: Response) -> ApiError:
    fault = qbo_fault(response) or {}
    return qbo_fault_error(fault, status=response.status, response=response)


def qbo_fault_error(fault: Mapping[str, Any], *, status: int, response: Response | None = None) -> ApiError:
    """The error for one Fault: of a whole answer, or of one batch item (then `status` is 200, `response` None)."""
    errors = [e for e in fault.get("Error", ()) if isinstance(e, dict)]
    first = errors[0] if errors else {}
    code = _qbo_code(first)
    kind: type[ApiError] | None = None
    for error in errors:
        kind = _QBO_CODES.get(_qbo_code(error) or "")
        if kind is not None:
            first, code = error, _qbo_code(error)
            break
    if kind is None and status not in (200, 400):
        kind = error_for_status(status)
    if kind is None:
        kind = _QBO_FAULT_TYPES.get(str(fault.get("type", "")).lower(), ValidationFailed if errors else ApiError)
    text = ": ".join(str(first[key]) for key in ("Message", "Detail") if first.get(key))
    message = _short(text or (f"HTTP {status}" if status != 200 else "fault without details"))
    trace_id = response.header("intuit_tid") if response is not None else None
    retry_after = None
    if kind is RateLimited:
        retry_after = (retry_after_seconds(response) if response is not None else None) or _QBO_THROTTLE_SECONDS
    return kind(
        message, provider=Provider.QUICKBOOKS, status=status, code=code, retry_after=retry_after, trace_id=trace_id
    )


def _qbo_code(error: Mapping[str, Any]) -> str | None:
    code = str(error.get("code") or "").strip()
    return str(int(code)) if code.isdigit() else code or None  # XML messages spell 3001 as "003001"


def _qbo_xml_fault(body: bytes) -> Mapping[str, Any] | None:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if _local_name(element.tag) == "Fault":
            errors = [
                {
                    "code": error.get("code"),
                    **{_local_name(child.tag): (child.text or "").strip() for child in error},
                }
                for error in element
                if _local_name(error.tag) == "Error"
            ]
            return {"type": element.get("type"), "Error": errors}
    return None


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop the XML namespace


# --- OAuth token endpoints ----------------------------------------------------------------------------------------

_OAUTH_ERRORS: dict[str, type[ApiError]] = {
    "invalid_grant": AuthRevoked,  # refresh token expired, revoked or already rotated away
    "invalid_client": Unauthorized,  # our client id/secret are wrong: configuration, not the account
    "unauthorized_client": Unauthorized,
}


def oauth_error(provider: Provider, response: Response) -> ApiError:
    """RFC 6749 error answers. `invalid_grant` on a refresh means the grant is gone: the account must reconnect."""
    body = _json_object(response.body)
    code = str(body.get("error") or "") or None
    message = _short(str(body.get("error_description") or body.get("message") or f"HTTP {response.status}"))
    kind = _OAUTH_ERRORS.get(code or "") or error_for_status(response.status)
    retry_after = retry_after_seconds(response) if kind is RateLimited else None
    return kind(message, provider=provider, status=response.status, code=code, retry_after=retry_after)
