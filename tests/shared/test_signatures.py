"""Signatures against the official vectors, and property-based tampering: any changed byte is refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import signatures
from shared.errors import SignatureError
from tests.conftest import reference_vectors

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://hooks.example.com/webhooks/hubspot?tenant=acme%3Aeu&x=a%2Cb&q=a%20b%26c"
BODY = b'[{"eventId":1,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","objectId":1}]'
NOW_MS = 1_700_000_000_000


def sign(vector: dict[str, Any]) -> str:
    body = vector["body"].encode()
    if vector["provider"] == "intuit":
        return signatures.intuit(vector["secret"], body)
    if vector["version"] == "v1":
        return signatures.hubspot_v1(vector["secret"], body)
    if vector["version"] == "v2":
        return signatures.hubspot_v2(vector["secret"], vector["method"], vector["uri"], body)
    return signatures.hubspot_v3(vector["secret"], vector["method"], vector["uri"], body, vector["timestamp"])


def test_every_reference_vector_matches() -> None:
    vectors = reference_vectors()
    assert {v["provider"] for v in vectors} == {"hubspot", "intuit"}
    for vector in vectors:
        assert sign(vector) == vector["expected"], vector["id"]


def test_v3_vectors_verify_with_the_freshness_window_at_their_timestamp() -> None:
    for vector in reference_vectors():
        if vector["provider"] == "hubspot" and vector["version"] == "v3":
            now = int(vector["timestamp"]) / 1000
            signatures.verify_hubspot_v3(
                vector["secret"], vector["method"], vector["uri"], vector["body"].encode(),
                vector["timestamp"], vector["expected"], now=now,
            )  # fmt: skip


def test_intuit_vector_verifies() -> None:
    vector = next(v for v in reference_vectors() if v["provider"] == "intuit")
    signatures.verify_intuit(vector["secret"], vector["body"].encode(), vector["expected"])


def test_v3_decodes_exactly_the_twelve_escapes_and_leaves_the_rest() -> None:
    decoded = signatures.hubspot_decode_uri(URI)
    assert decoded == "https://hooks.example.com/webhooks/hubspot?tenant=acme:eu&x=a,b&q=a%20b%26c"
    every = "%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B"
    assert signatures.hubspot_decode_uri(every) == ":/?@!$'()*,;"
    for kept in ("%20", "%26", "%3D", "%2B", "%23", "%25"):
        assert signatures.hubspot_decode_uri(kept) == kept


def test_v3_signature_over_encoded_query_equals_signature_over_decoded_query() -> None:
    ts = str(NOW_MS)
    encoded = signatures.hubspot_v3(SECRET, "POST", URI, BODY, ts)
    assert encoded == signatures.hubspot_v3(SECRET, "POST", signatures.hubspot_decode_uri(URI), BODY, ts)


def _verify(
    *, method: str = "POST", uri: str = URI, body: bytes = BODY, ts: str = str(NOW_MS), sig: str | None = None
) -> None:
    good = signatures.hubspot_v3(SECRET, "POST", URI, BODY, str(NOW_MS))
    signatures.verify_hubspot_v3(SECRET, method, uri, body, ts, sig or good, now=NOW_MS / 1000)


def test_v3_untampered_request_verifies() -> None:
    _verify()


@given(st.data())
def test_v3_any_changed_body_byte_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(BODY) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(BODY)
    tampered[index] ^= flip
    with pytest.raises(SignatureError):
        _verify(body=bytes(tampered))


@given(st.data())
def test_v3_any_changed_uri_character_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(URI) - 1))
    replacement = data.draw(st.characters(min_codepoint=33, max_codepoint=126).filter(lambda c: c != URI[index]))
    tampered = URI[:index] + replacement + URI[index + 1 :]
    if signatures.hubspot_decode_uri(tampered) == signatures.hubspot_decode_uri(URI):
        return  # an escape spelled differently but decoding the same is the same URI to HubSpot
    with pytest.raises(SignatureError):
        _verify(uri=tampered)


@given(st.sampled_from(["GET", "PUT", "PATCH", "DELETE", "post", "POST "]))
def test_v3_any_other_method_is_refused(method: str) -> None:
    with pytest.raises(SignatureError):
        _verify(method=method)


@given(st.integers(-299_000, 299_000).filter(lambda d: d != 0))
def test_v3_any_changed_timestamp_is_refused(delta_ms: int) -> None:
    with pytest.raises(SignatureError) as refused:
        _verify(ts=str(NOW_MS + delta_ms))
    assert refused.value.reason == "mismatch"


@pytest.mark.parametrize("delta_ms", [-300_001, 300_001, -86_400_000])
def test_v3_timestamp_outside_five_minutes_is_stale(delta_ms: int) -> None:
    ts = str(NOW_MS + delta_ms)
    sig = signatures.hubspot_v3(SECRET, "POST", URI, BODY, ts)
    with pytest.raises(SignatureError) as refused:
        _verify(ts=ts, sig=sig)
    assert refused.value.reason == "stale"


@pytest.mark.parametrize(("ts", "sig"), [(None, "x"), ("", "x"), ("12.5", "x"), (str(NOW_MS), None)])
def test_v3_missing_headers_are_refused(ts: str | None, sig: str | None) -> None:
    with pytest.raises(SignatureError) as refused:
        signatures.verify_hubspot_v3(SECRET, "POST", URI, BODY, ts, sig, now=NOW_MS / 1000)
    assert refused.value.reason == "missing"


@given(st.binary(min_size=1, max_size=200), st.data())
def test_intuit_any_changed_body_byte_is_refused(body: bytes, data: st.DataObject) -> None:
    token = "verifier-token"
    good = signatures.intuit(token, body)
    signatures.verify_intuit(token, body, good)
    index = data.draw(st.integers(0, len(body) - 1))
    tampered = bytearray(body)
    tampered[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SignatureError):
        signatures.verify_intuit(token, bytes(tampered), good)


def test_intuit_signature_made_with_another_key_is_refused() -> None:
    body = b'{"eventNotifications":[]}'
    with pytest.raises(SignatureError):
        signatures.verify_intuit("verifier-token", body, signatures.intuit("oauth-client-secret", body))


def test_hubspot_v1_verifies_and_refuses_tampering() -> None:
    good = signatures.hubspot_v1(SECRET, BODY)
    signatures.verify_hubspot_v1(SECRET, BODY, good)
    with pytest.raises(SignatureError):
        signatures.verify_hubspot_v1(SECRET, BODY + b" ", good)
