"""HubSpot webhook bodies → change envelopes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.receiver import _hubspot
from shared.domain import Provider
from shared.envelope import Operation
from shared.errors import PayloadError


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": 100,
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1_700_000_000_000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": 123,
        "propertyName": "email",
        "propertyValue": "jane@example.com",
        "changeSource": "CRM_UI",
        "sourceId": "userId:98499705",
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def parse(*events: dict[str, Any]) -> tuple[list[Any], list[str]]:
    return _hubspot.parse(orjson.dumps(list(events)))


def test_property_change_becomes_an_update_envelope() -> None:
    [envelope], ignored = parse(event())
    assert ignored == []
    assert envelope.provider is Provider.HUBSPOT
    assert (envelope.account_id, envelope.object_type, envelope.object_id) == ("62515", "contact", "123")
    assert envelope.operation is Operation.UPDATED
    assert envelope.property_name == "email"
    assert (envelope.change_source, envelope.source_id) == ("CRM_UI", "userId:98499705")
    assert envelope.occurred_at_ms == 1_700_000_000_000
    assert envelope.routing_key == "hubspot.62515.contact.123"


def test_documented_event_type_alias_is_accepted() -> None:
    [envelope], _ = parse(event(subscriptionType=None, eventType="company.creation"))
    assert (envelope.object_type, envelope.operation) == ("company", Operation.CREATED)


@pytest.mark.parametrize(
    ("subscription", "operation"),
    [
        ("contact.creation", Operation.CREATED),
        ("product.propertyChange", Operation.UPDATED),
        ("line_item.deletion", Operation.DELETED),
        ("contact.privacyDeletion", Operation.DELETED),
        ("company.restore", Operation.RESTORED),
    ],
)
def test_classic_subscription_types(subscription: str, operation: Operation) -> None:
    [envelope], _ = parse(event(subscriptionType=subscription))
    assert envelope.object_type == subscription.split(".")[0]
    assert envelope.operation is operation


@pytest.mark.parametrize(
    ("type_id", "object_type"), [("0-1", "contact"), ("0-53", "invoice"), ("0-101", "commerce_payment")]
)
def test_generic_object_events_use_object_type_id(type_id: str, object_type: str) -> None:
    [envelope], _ = parse(event(subscriptionType="object.propertyChange", objectTypeId=type_id))
    assert envelope.object_type == object_type


def test_generic_event_without_object_type_id_is_malformed() -> None:
    with pytest.raises(PayloadError, match="objectTypeId"):
        parse(event(subscriptionType="object.creation"))


def test_merge_names_the_survivor_and_the_merged_away_records() -> None:
    merge = event(
        subscriptionType="contact.merge", objectId=None, propertyName=None,
        primaryObjectId=10, mergedObjectIds=[11, 12], newObjectId=10,
    )  # fmt: skip
    [envelope], _ = parse(merge)
    assert envelope.operation is Operation.MERGED
    assert envelope.object_id == "10"
    assert envelope.merged_ids == ("11", "12")


def test_merge_into_a_new_record_counts_the_primary_as_merged_away() -> None:
    merge = event(subscriptionType="contact.merge", primaryObjectId=10, mergedObjectIds=[11], newObjectId=99)
    [envelope], _ = parse(merge)
    assert envelope.object_id == "99"
    assert set(envelope.merged_ids) == {"10", "11"}


def test_association_change_is_keyed_by_the_from_object() -> None:
    change = event(
        subscriptionType="contact.associationChange", objectId=None, fromObjectId=5, toObjectId=6,
        associationType="CONTACT_TO_COMPANY", associationRemoved=False,
    )  # fmt: skip
    [envelope], _ = parse(change)
    assert (envelope.object_id, envelope.operation) == ("5", Operation.ASSOCIATION_CHANGED)


def test_unsynced_event_types_are_ignored_not_refused() -> None:
    envelopes, ignored = parse(
        event(subscriptionType="conversation.creation"), event(subscriptionType="ticket.creation")
    )
    assert envelopes == []
    assert ignored == ["conversation.creation", "ticket.creation"]


def test_resend_with_a_higher_attempt_number_has_the_same_key() -> None:
    [first], _ = parse(event(attemptNumber=0))
    [again], _ = parse(event(attemptNumber=3))
    [other], _ = parse(event(occurredAt=1_700_000_000_001))
    assert first.event_id == again.event_id
    assert first.event_id != other.event_id


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b'{"eventId": 1}', "JSON array"),
        (b"[1]", "not a JSON object"),
        (orjson.dumps([event(portalId=None)]), "portalId"),
        (orjson.dumps([event(objectId=None)]), "objectId"),
        (orjson.dumps([event(occurredAt="yesterday")]), "occurredAt"),
        (orjson.dumps([event(subscriptionType=None)]), "subscriptionType"),
        (orjson.dumps([event(portalId=True)]), "portalId"),
    ],
)
def test_malformed_bodies_name_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        _hubspot.parse(body)
