"""Intuit webhook bodies (classic and CloudEvents) → change envelopes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.receiver import _intuit
from shared.domain import Provider
from shared.envelope import Operation
from shared.errors import PayloadError

NOW_MS = 1_700_000_000_000


def cloud_event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "88cd52aa-33b6-4351-9aa4-47572edbd068",
        "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
        "type": "qbo.customer.created.v1",
        "datacontenttype": "application/json",
        "time": "2025-09-10T21:31:25.179851517Z",
        "intuitentityid": "1234",
        "intuitaccountid": "310687",
        "data": {},
    }
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def parse(document: Any) -> tuple[list[Any], list[str]]:
    return _intuit.parse(orjson.dumps(document), received_at_ms=NOW_MS)


def test_classic_notification_becomes_envelopes() -> None:
    body = {
        "eventNotifications": [
            {
                "realmId": "1185883450",
                "dataChangeEvent": {
                    "entities": [
                        {"name": "Customer", "id": "1", "operation": "Create",
                         "lastUpdated": "2015-10-05T14:42:19-0700"},
                        {"name": "Invoice", "id": "9", "operation": "Void",
                         "lastUpdated": "2025-09-08T20:52:31.657Z"},
                    ]
                },
            }
        ]
    }  # fmt: skip
    [customer, invoice], ignored = parse(body)
    assert ignored == []
    assert customer.provider is Provider.QUICKBOOKS
    assert (customer.account_id, customer.object_type, customer.object_id) == ("1185883450", "customer", "1")
    assert customer.operation is Operation.CREATED
    assert customer.occurred_at_ms == 1444081339000
    assert invoice.operation is Operation.VOIDED
    assert customer.event_id != invoice.event_id


def test_classic_merge_carries_the_deleted_id() -> None:
    entity = {"name": "Customer", "id": "5", "operation": "Merge", "deletedId": "6", "lastUpdated": "2025-01-01"}
    [envelope], _ = parse({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [entity]}}]})
    assert (envelope.operation, envelope.merged_ids) == (Operation.MERGED, ("6",))


def test_cloudevents_array_becomes_envelopes_with_nanosecond_time() -> None:
    [envelope], _ = parse([cloud_event()])
    assert (envelope.account_id, envelope.object_type, envelope.object_id) == ("310687", "customer", "1234")
    assert envelope.operation is Operation.CREATED
    assert envelope.occurred_at_ms == 1757539885179
    assert envelope.event_id == "qe-88cd52aa-33b6-4351-9aa4-47572edbd068"


def test_cloudevents_delivery_may_mix_realms() -> None:
    other_realm = cloud_event(id="b", intuitaccountid="999", type="qbo.invoice.updated.v1")
    envelopes, _ = parse([cloud_event(id="a"), other_realm])
    assert [(e.account_id, e.object_type) for e in envelopes] == [("310687", "customer"), ("999", "invoice")]


@pytest.mark.parametrize(
    ("verb", "operation"),
    [
        ("void", Operation.VOIDED),
        ("voided", Operation.VOIDED),
        ("delete", Operation.DELETED),
        ("deleted", Operation.DELETED),
        ("emailed", Operation.EMAILED),
        ("somethingnew", Operation.UPDATED),
    ],
)
def test_cloudevents_verbs_are_read_tolerantly(verb: str, operation: Operation) -> None:
    [envelope], _ = parse([cloud_event(type=f"qbo.invoice.{verb}.v1")])
    assert envelope.operation is operation


def test_cloudevents_merge_carries_deletedid() -> None:
    [envelope], _ = parse([cloud_event(type="qbo.customer.merged.v1", data={"deletedid": "27"})])
    assert (envelope.operation, envelope.merged_ids) == (Operation.MERGED, ("27",))


def test_single_structured_cloudevent_is_accepted() -> None:
    [envelope], _ = parse(cloud_event())
    assert envelope.object_id == "1234"


def test_entities_hsqbo_does_not_sync_are_ignored() -> None:
    envelopes, ignored = parse([cloud_event(type="qbo.account.created.v1"), cloud_event(id="x")])
    assert [e.object_type for e in envelopes] == ["customer"]
    assert ignored == ["account"]


def classic_update(last_updated: str) -> dict[str, Any]:
    return {"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [
        {"name": "Item", "id": "3", "operation": "Update", "lastUpdated": last_updated}]}}]}  # fmt: skip


def test_classic_resend_has_the_same_key() -> None:
    body = classic_update("2025-09-08T20:52:31.657Z")
    [first], _ = parse(body)
    [again], _ = parse(body)
    assert first.event_id == again.event_id


def test_classic_changes_stamped_to_the_second_are_never_taken_for_a_resend() -> None:
    """Two updates within one second would look exactly alike: each delivery is queued (a resend costs a re-read)."""
    body = orjson.dumps(classic_update("2015-10-05T14:42:19-0700"))
    [first], _ = _intuit.parse(body, received_at_ms=NOW_MS)
    [second], _ = _intuit.parse(body, received_at_ms=NOW_MS + 700)
    assert first.event_id != second.event_id


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"something": 1}, "neither"),
        ({"eventNotifications": {}}, "must be an array"),
        ({"eventNotifications": [{"dataChangeEvent": {"entities": []}}]}, "realmId"),
        ({"eventNotifications": [{"realmId": "1"}]}, "entities"),
        ([cloud_event(type="account.created")], "qbo.<entity>.<verb>.v1"),
        ([cloud_event(intuitaccountid=None)], "intuitaccountid"),
        ([cloud_event(id="")], "'id'"),
        ([cloud_event(time="last tuesday")], "ISO 8601"),
        ([42], "not an object"),
    ],
)
def test_malformed_bodies_name_the_problem(document: Any, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        parse(document)


def test_invalid_json_is_malformed() -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        _intuit.parse(b"{", received_at_ms=NOW_MS)
