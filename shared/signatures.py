"""Webhook signatures, both directions: the receiver verifies, the sandboxes sign. One implementation of each.

HubSpot (app client secret):
  v1  hex SHA-256 of secret + body                                   (legacy apps, no timestamp)
  v2  hex SHA-256 of secret + method + uri + body                    (workflow actions, cards)
  v3  base64 HMAC-SHA256 of method + decoded uri + body + timestamp  (timestamp in epoch ms, 5-minute window)
Intuit (webhook verifier token): base64 HMAC-SHA256 of the raw body, header `intuit-signature`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from shared.errors import SignatureError

# The only escapes HubSpot decodes before signing the URI; others (%20, %26, %3D...) stay as sent.
_HUBSPOT_URI_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def hubspot_decode_uri(uri: str) -> str:
    if "%" not in uri:
        return uri
    for encoded, decoded in _HUBSPOT_URI_DECODE.items():
        uri = uri.replace(encoded, decoded)
    return uri


def hubspot_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def hubspot_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + method.encode() + uri.encode() + body).hexdigest()


def hubspot_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    message = method.encode() + hubspot_decode_uri(uri).encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.digest(secret.encode(), message, "sha256")).decode()  # one-shot: OpenSSL's fast path


def intuit(verifier_token: str, body: bytes) -> str:
    return base64.b64encode(hmac.digest(verifier_token.encode(), body, "sha256")).decode()


def verify_hubspot_v3(
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    timestamp_ms: str | None,
    signature: str | None,
    *,
    max_age_seconds: float = 300.0,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless `signature` is HubSpot's v3 signature of this request, made recently."""
    if not signature:
        raise SignatureError("X-HubSpot-Signature-v3 header is missing", reason="missing")
    if not timestamp_ms or not (timestamp_ms.isascii() and timestamp_ms.isdigit() and len(timestamp_ms) <= 20):
        raise SignatureError(
            "X-HubSpot-Request-Timestamp header is missing or not epoch milliseconds", reason="missing"
        )
    now_ms = (time.time() if now is None else now) * 1000
    # Stricter than HubSpot's SDKs, which accept any future timestamp: a clock skew beyond the window is refused too.
    if abs(now_ms - int(timestamp_ms)) > max_age_seconds * 1000:
        raise SignatureError("X-HubSpot-Request-Timestamp is outside the allowed window", reason="stale")
    if not hmac.compare_digest(hubspot_v3(secret, method, uri, body, timestamp_ms).encode(), signature.encode()):
        raise SignatureError("X-HubSpot-Signature-v3 does not match", reason="mismatch")


def verify_hubspot_v1(secret: str, body: bytes, signature: str | None) -> None:
    if not signature:
        raise SignatureError("X-HubSpot-Signature header is missing", reason="missing")
    if not hmac.compare_digest(hubspot_v1(secret, body).encode(), signature.lower().encode()):
        raise SignatureError("X-HubSpot-Signature does not match", reason="mismatch")


def verify_intuit(verifier_token: str, body: bytes, signature: str | None) -> None:
    if not signature:
        raise SignatureError("intuit-signature header is missing", reason="missing")
    if not hmac.compare_digest(intuit(verifier_token, body).encode(), signature.strip().encode()):
        raise SignatureError("intuit-signature does not match", reason="mismatch")
