"""Every error hsqbo raises on purpose derives from `HsqboError`:

    HsqboError
    ├── ConfigError           a setting is missing or invalid; the process stops at start naming it
    ├── WebhookError          an incoming webhook is refused; `status` is the HTTP answer
    │   ├── SignatureError    401: missing, wrong or stale signature
    │   ├── PayloadError      400: body is not the JSON shape the provider documents
    │   ├── PayloadTooLarge   413: body over HSQBO_MAX_BODY_BYTES
    │   └── UnsupportedMediaType  415: content type the provider never sends
    └── BusError              RabbitMQ did not take a message durably; the sender must retry (503)
        ├── BrokerUnavailable no connection or topology to the broker right now
        └── PublishNotConfirmed  the broker returned, nacked or did not confirm in time
"""

from __future__ import annotations


class HsqboError(Exception):
    """Base of every error hsqbo raises on purpose."""


class ConfigError(HsqboError):
    """A setting is missing or invalid. The message names it in one line."""


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
