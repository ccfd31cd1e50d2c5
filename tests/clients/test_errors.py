"""Every provider error answer becomes the right `ApiError` kind with its retry hints."""

from __future__ import annotations

import email.utils

import pytest

from shared.clients import Response
from shared.clients._errors import hubspot_batch_error, hubspot_error, oauth_error, qbo_error, qbo_fault_error
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
from tests.clients.answers import json_answer


def _fault(code: str, message: str, detail: str = "", fault_type: str = "ValidationFault") -> dict[str, object]:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}], "type": fault_type},
        "time": "2026-10-09T08:00:00.000-07:00",
    }


# --- HubSpot --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "category", "kind"),
    [
        (400, "VALIDATION_ERROR", ValidationFailed),
        (401, "INVALID_AUTHENTICATION", Unauthorized),
        (403, "MISSING_SCOPES", MissingScopes),
        (403, "FORBIDDEN", Forbidden),
        (404, "OBJECT_NOT_FOUND", NotFound),
        (500, "INTERNAL_ERROR", ServerError),
        (502, None, ServerError),
        (504, None, ServerError),
        (414, None, ApiError),
    ],
)
def test_hubspot_status_maps_to_error_kind(status: int, category: str | None, kind: type[ApiError]) -> None:
    body = {"status": "error", "message": "nope", "category": category, "correlationId": "c-1"}
    error = hubspot_error(json_answer(status, body))
    assert type(error) is kind
    assert (error.provider, error.status, error.code, error.trace_id) == ("hubspot", status, category, "c-1")


def test_hubspot_missing_scopes_names_every_scope_the_answer_lists() -> None:
    body = {  # HubSpot's answer (errors[].context.requiredGranularScopes; one requirement per entry)
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "correlationId": "c-2",
        "category": "MISSING_SCOPES",
        "errors": [
            {"message": "One or more of the following scopes are required.",
             "context": {"requiredGranularScopes": ["crm.objects.deals.read", "crm.objects.deals.sensitive.read.v2"]}},
            {"message": "All of the following scopes are required.",
             "context": {"requiredGranularScopes": ["crm.objects.invoices.read"]}},
        ],
        "links": {"scopes": "https://developers.hubspot.com/scopes"},
    }  # fmt: skip
    error = hubspot_error(json_answer(403, body))
    assert isinstance(error, MissingScopes)
    assert error.scopes == (
        "crm.objects.deals.read",
        "crm.objects.deals.sensitive.read.v2",
        "crm.objects.invoices.read",
    )
    assert (error.status, error.code, error.trace_id, error.transient) == (403, "MISSING_SCOPES", "c-2", False)


@pytest.mark.parametrize(
    "where",
    [
        {"errors": [{"message": "One or more of the following scopes are required.",
                     "context": {"requiredScopes": ["content"]}}]},  # older answers
        {"context": {"missingScopes": ["content"]}},  # the spec's Error example
        {"errors": "not a list", "context": {"missingScopes": ["content", 7, ""]}},  # junk around it is ignored
    ],
)  # fmt: skip
def test_hubspot_missing_scopes_reads_the_older_and_the_spec_shapes(where: dict[str, object]) -> None:
    error = hubspot_error(json_answer(403, {"category": "MISSING_SCOPES", "message": "no", **where}))
    assert isinstance(error, MissingScopes)
    assert error.scopes == ("content",)


def test_hubspot_missing_scopes_without_names_is_still_missing_scopes() -> None:
    error = hubspot_error(json_answer(403, {"category": "MISSING_SCOPES", "message": "no"}))
    assert isinstance(error, MissingScopes)
    assert error.scopes == ()
    assert "reconnect" not in str(error)


def test_hubspot_transient_kinds_are_exactly_rate_limits_server_errors_and_transport() -> None:
    assert hubspot_error(json_answer(503, {})).transient
    assert hubspot_error(json_answer(429, {})).transient
    assert not hubspot_error(json_answer(400, {})).transient
    assert not hubspot_error(json_answer(404, {})).transient


def test_hubspot_409_carries_the_existing_record_id() -> None:
    body = {"status": "error", "message": "Contact already exists. Existing ID: 12345", "category": "CONFLICT"}
    error = hubspot_error(json_answer(409, body))
    assert isinstance(error, Conflict)
    assert error.existing_id == "12345"
    assert not error.transient


def test_hubspot_unique_value_collision_400_is_a_conflict_with_the_holder_id() -> None:
    message = (
        "Cannot set PropertyValueCoordinates{portalId=1, objectTypeId=0-1, propertyName=qbo_id, value=58} on "
        "552148386511. 552239500007 already has that value."
    )
    error = hubspot_error(json_answer(400, {"message": message, "category": "VALIDATION_ERROR"}))
    assert isinstance(error, Conflict)
    assert error.existing_id == "552239500007"


def test_hubspot_invalid_property_values_stay_validation_errors() -> None:
    message = 'Property values were not valid: [{"isValid":false,"message":"x","error":"INVALID_EMAIL","name":"email"}]'
    error = hubspot_error(json_answer(400, {"message": message, "category": "VALIDATION_ERROR"}))
    assert type(error) is ValidationFailed


def test_hubspot_429_honours_retry_after_seconds() -> None:
    error = hubspot_error(json_answer(429, {"errorType": "RATE_LIMIT"}, {"Retry-After": "7"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    assert error.code == "RATE_LIMIT"


def test_hubspot_429_retry_after_may_be_an_http_date() -> None:
    future = email.utils.formatdate(timeval=4_000_000_000, usegmt=True)
    error = hubspot_error(json_answer(429, {}, {"Retry-After": future}))
    assert error.retry_after is not None
    assert error.retry_after > 0


def test_hubspot_burst_429_waits_for_the_rate_limit_interval() -> None:
    body = {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", "message": "ten_secondly_rolling"}
    headers = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Remaining": "0"}
    assert hubspot_error(json_answer(429, body, headers)).retry_after == 10.0


def test_hubspot_daily_429_backs_off_for_an_hour() -> None:
    body = {"errorType": "RATE_LIMIT", "policyName": "DAILY", "message": "You have reached your daily limit."}
    assert hubspot_error(json_answer(429, body)).retry_after == 3600.0


def test_hubspot_429_without_hints_waits_one_burst_window() -> None:
    assert hubspot_error(json_answer(429, {})).retry_after == 10.0


def test_hubspot_locked_and_migrating_answers_are_rate_limits() -> None:
    locked = hubspot_error(json_answer(423, {"message": "locked"}))
    assert isinstance(locked, RateLimited)
    assert locked.retry_after == 2.0
    migrating = hubspot_error(json_answer(477, {"message": "migration"}, {"Retry-After": "3600"}))
    assert isinstance(migrating, RateLimited)
    assert migrating.retry_after == 3600.0


def test_hubspot_non_json_error_body_still_maps_by_status() -> None:
    error = hubspot_error(Response(502, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>"))
    assert isinstance(error, ServerError)
    assert error.message == "HTTP 502"


def test_an_error_body_that_is_not_utf8_still_maps_by_status() -> None:
    error = hubspot_error(Response(502, {"Content-Type": "application/json"}, b'{"message": "\xff\xfe"}'))
    assert isinstance(error, ServerError)
    assert error.message == "HTTP 502"


def test_hubspot_long_messages_are_cut() -> None:
    error = hubspot_error(json_answer(400, {"message": "x" * 5000}))
    assert len(error.message) <= 500


@pytest.mark.parametrize(
    ("category", "kind"),
    [("OBJECT_NOT_FOUND", NotFound), ("VALIDATION_ERROR", ValidationFailed), ("CONFLICT", Conflict), ("?", ApiError)],
)
def test_hubspot_batch_item_error_maps_by_category_and_names_its_ids(category: str, kind: type[ApiError]) -> None:
    item = {
        "status": "error",
        "category": category,
        "message": "Could not get some CONTACT objects",
        "context": {"ids": ["999", 7]},
    }
    error = hubspot_batch_error(item)
    assert type(error) is kind
    assert error.ids == ("999", "7")


# --- QuickBooks Online ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        ("610", "Object Not Found", NotFound),
        ("5010", "Stale Object Error", StaleObject),
        ("6240", "Duplicate Name Exists Error", DuplicateName),
        ("6140", "Duplicate Document Number Error", DuplicateDocNumber),
        ("6000", "A business validation error has occurred", ValidationFailed),
        ("2500", "Invalid Reference Id", ValidationFailed),
        ("6190", "Invalid Company Status", Forbidden),
    ],
)
def test_qbo_fault_code_maps_to_error_kind(code: str, message: str, kind: type[ApiError]) -> None:
    error = qbo_error(json_answer(400, _fault(code, message, "detail text"), {"intuit_tid": "tid-1"}))
    assert type(error) is kind
    assert (error.provider, error.status, error.code, error.trace_id) == ("quickbooks", 400, code, "tid-1")
    assert error.message == f"{message}: detail text"


def test_qbo_stale_object_is_transient_duplicate_name_is_not() -> None:
    assert qbo_error(json_answer(400, _fault("5010", "Stale Object Error"))).transient
    assert not qbo_error(json_answer(400, _fault("6240", "Duplicate Name Exists Error"))).transient


def test_qbo_specific_code_wins_over_the_first_error() -> None:
    body = _fault("2020", "Required param missing")
    body["Fault"]["Error"].append({"Message": "Stale Object Error", "code": "5010"})  # type: ignore[index]
    assert isinstance(qbo_error(json_answer(400, body)), StaleObject)


def test_qbo_json_throttle_429_waits_sixty_seconds() -> None:
    body = _fault("3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429", fault_type="SERVICE")
    error = qbo_error(json_answer(429, body))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 60.0


def test_qbo_throttle_429_honours_retry_after_when_given() -> None:
    error = qbo_error(json_answer(429, _fault("3001", "ThrottleExceeded", fault_type="SERVICE"), {"Retry-After": "5"}))
    assert error.retry_after == 5.0


def test_qbo_xml_throttle_fault_is_parsed() -> None:
    body = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<IntuitResponse time="2017-07-30T22:45:22.933-07:00" xmlns="http://schema.intuit.com/finance/v3">
    <Fault type="SERVICE">
        <Error code="3001">
            <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>
            <Detail>The request limit was reached.  Try again later</Detail>
        </Error>
    </Fault>
</IntuitResponse>"""
    error = qbo_error(Response(429, {"Content-Type": "application/xml"}, body))
    assert isinstance(error, RateLimited)
    assert error.code == "3001"
    assert "request limit was reached" in error.message


def test_qbo_xml_auth_fault_is_unauthorized() -> None:
    body = (
        b'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3"><Fault type="AUTHENTICATION">'
        b'<Error code="3200"><Message>message=AuthenticationFailed; errorCode=003200; statusCode=401</Message>'
        b"<Detail>Malformed bearer token</Detail></Error></Fault></IntuitResponse>"
    )
    error = qbo_error(Response(401, {}, body))
    assert type(error) is Unauthorized
    assert error.code == "3200"


@pytest.mark.parametrize(
    ("status", "kind"), [(401, Unauthorized), (403, Forbidden), (404, NotFound), (500, ServerError), (503, ServerError)]
)
def test_qbo_status_without_known_code_maps_by_status(status: int, kind: type[ApiError]) -> None:
    assert type(qbo_error(json_answer(status, _fault("9999", "something")))) is kind


def test_qbo_system_fault_in_a_400_is_a_server_error() -> None:
    assert (
        type(
            qbo_error(json_answer(400, _fault("10000", "An application error has occurred", fault_type="SystemFault")))
        )
        is ServerError
    )


def test_qbo_empty_error_body_maps_by_status() -> None:
    error = qbo_error(Response(503, {}, b""))
    assert isinstance(error, ServerError)
    assert error.message == "HTTP 503"


def test_qbo_batch_item_fault_keeps_status_200() -> None:
    error = qbo_fault_error(_fault("6240", "Duplicate Name Exists Error")["Fault"], status=200)  # type: ignore[arg-type]
    assert isinstance(error, DuplicateName)
    assert error.status == 200


# --- OAuth ----------------------------------------------------------------------------------------------------------


def test_invalid_grant_means_the_authorization_is_revoked() -> None:
    body = {"error": "invalid_grant", "error_description": "refresh token is invalid, expired or revoked"}
    error = oauth_error(Provider.HUBSPOT, json_answer(400, body))
    assert isinstance(error, AuthRevoked)
    assert isinstance(error, Unauthorized)
    assert error.code == "invalid_grant"
    assert not error.transient


def test_invalid_client_is_unauthorized_not_revoked() -> None:
    error = oauth_error(Provider.QUICKBOOKS, json_answer(401, {"error": "invalid_client"}))
    assert type(error) is Unauthorized


def test_token_endpoint_outage_is_transient() -> None:
    assert oauth_error(Provider.QUICKBOOKS, Response(503, {}, b"")).transient
