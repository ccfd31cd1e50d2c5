"""Every error hsqbo raises on purpose derives from `HsqboError`:

HsqboError
├── ConfigError           a setting is missing or invalid; the process stops at start naming it
├── StartupError          a process cannot start (a port in use); one line on stderr, exit 1
├── WebhookError          an incoming webhook is refused; `status` is the HTTP answer
│   ├── SignatureError    401: missing, wrong or stale signature
│   ├── PayloadError      400: body is not the JSON shape the provider documents
│   ├── PayloadTooLarge   413: body over HSQBO_MAX_BODY_BYTES
│   └── UnsupportedMediaType  415: content type the provider never sends
├── BusError              RabbitMQ did not take a message durably; the sender must retry (503)
│   ├── BrokerUnavailable no connection or topology to the broker right now
│   └── PublishNotConfirmed  the broker returned, nacked or did not confirm in time
└── ApiError              a HubSpot or QBO call failed; `transient`: re-running the step may succeed
    ├── Unauthorized      401 after the one token refresh and retry
    │   └── AuthRevoked   the refresh grant was refused (invalid_grant): the account must be reconnected
    ├── Forbidden         403: app not authorized, QBO company subscription ended
    │   └── MissingScopes HubSpot 403 MISSING_SCOPES: the token lacks `scopes`; the connection pauses until the
    │                     account is reconnected with them (not one failing record after another)
    ├── NotFound          404, HubSpot OBJECT_NOT_FOUND, QBO 610 (gone, or a referenced record inactive)
    ├── Conflict          HubSpot 409 / unique value taken; `existing_id` is the record that holds it
    ├── ValidationFailed  400, HubSpot VALIDATION_ERROR, QBO ValidationFault: the data must change
    │   ├── StaleObject   QBO 5010: SyncToken out of date; re-read and re-apply (transient)
    │   ├── DuplicateName QBO 6240: DisplayName/Name already used by another name-list record
    │   └── DuplicateDocNumber  QBO 6140: DocNumber already used by another transaction
    ├── RateLimited       429, QBO 3001, HubSpot 423 Locked / 477 Migration: wait `retry_after` s
    ├── ServerError       5xx, 408, QBO SystemFault (transient)
    └── TransportError    timeout or connection failure: a write may or may not have happened
"""

from __future__ import annotations

from typing import Any


class HsqboError(Exception):
    """Base of every error hsqbo raises on purpose."""


class ConfigError(HsqboError):
    """A setting is missing or invalid. The message names it in one line."""


class StartupError(HsqboError):
    """A process cannot start (a port already in use...): one line on stderr, exit 1."""


class WebhookError(HsqboError):
    status: int = 400
    code: str = "bad_request"


class SignatureError(WebhookError):
    status = 401
    code = "bad_signature"

    def __init__(self, message: str, *, reason: str = "mismatch") -> None:
        super().__init__(message)
        self.reason = reason


class PayloadError(WebhookError):
    status = 400
    code = "malformed"


class PayloadTooLarge(WebhookError):
    status = 413
    code = "too_large"


class UnsupportedMediaType(WebhookError):
    status = 415
    code = "unsupported_media_type"


class BusError(HsqboError):
    """The message is not durably queued; whoever handed it over must retry."""


class BrokerUnavailable(BusError):
    pass


class PublishNotConfirmed(BusError):
    pass


class ApiError(HsqboError):
    """A provider API call failed. `transient` is all the worker needs to classify it without knowing the
    provider: True means re-running the sync step later (which re-reads what it writes) may succeed."""

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        trace_id: str | None = None,
        ids: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider  # "hubspot" | "quickbooks"
        self.status = status  # HTTP status of the answer that carried the error (200 for a QBO batch item)
        self.code = code  # QBO Fault code ("6240"), HubSpot category ("VALIDATION_ERROR") or OAuth error
        self.retry_after = retry_after  # seconds the provider asked us to wait, when it said
        self.trace_id = trace_id  # HubSpot correlationId / QBO intuit_tid, for the provider's support
        self.ids = ids  # records a batch error is about (HubSpot 207 context ids, or objectWriteTraceIds)

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        status = f" HTTP {self.status}" if self.status is not None else ""
        return f"{self.provider}{status}{code}: {self.message}"


class Unauthorized(ApiError):
    pass


class AuthRevoked(Unauthorized):
    pass


class Forbidden(ApiError):
    pass


class MissingScopes(Forbidden):
    """HubSpot refused a call its token has no scope for. `scopes`: the ones to grant, named for the operator."""

    def __init__(self, message: str, *, scopes: tuple[str, ...] = (), **fields: Any) -> None:
        super().__init__(message, **fields)
        self.scopes = scopes

    def naming(self, scopes: tuple[str, ...]) -> MissingScopes:
        """The same refusal, naming `scopes` as the ones to grant."""
        return MissingScopes(
            self.message, scopes=scopes, provider=self.provider, status=self.status, code=self.code,
            trace_id=self.trace_id,
        )  # fmt: skip

    def __str__(self) -> str:
        grant = f" (reconnect to grant {' '.join(self.scopes)})" if self.scopes else ""
        return super().__str__() + grant


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    def __init__(self, message: str, *, existing_id: str | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.existing_id = existing_id


class ValidationFailed(ApiError):
    pass


class StaleObject(ValidationFailed):
    transient = True


class DuplicateName(ValidationFailed):
    pass


class DuplicateDocNumber(ValidationFailed):
    pass


class RateLimited(ApiError):
    transient = True


class ServerError(ApiError):
    transient = True


class TransportError(ApiError):
    transient = True
