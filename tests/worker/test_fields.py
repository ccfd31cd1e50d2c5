"""Mapped fields: canonical values, QBO bodies and the three-way merge."""

from __future__ import annotations

from services.worker import _fields
from services.worker._fields import FieldMap, lower_text, number
from shared.syncconfig import ContactSettings, FieldMapping

MAPS = [
    FieldMap("email", "email", "PrimaryEmailAddr.Address", lower_text),
    FieldMap("city", "city", "BillAddr.City"),
    FieldMap("zip", "zip", "BillAddr.PostalCode"),
    FieldMap("price", "price", "UnitPrice", number),
    FieldMap("name", "firstname", "GivenName"),
]


def test_values_compare_in_one_canonical_form() -> None:
    hubspot = _fields.from_hubspot(MAPS, {"email": "Jane@Example.com ", "price": "6000.00", "city": ""})
    qbo = _fields.from_qbo(MAPS, {"PrimaryEmailAddr": {"Address": "jane@example.com"}, "UnitPrice": 6000})
    assert hubspot == qbo == {"email": "jane@example.com", "city": None, "zip": None, "price": "6000", "name": None}


def test_a_nested_qbo_aggregate_is_sent_whole_with_current_fields_kept() -> None:
    current = {"BillAddr": {"Id": "7", "Line1": "1 Main St", "City": "Old", "PostalCode": "111"}}
    body = _fields.to_qbo(MAPS, {"city": "New"}, current)
    assert body == {"BillAddr": {"Id": "7", "Line1": "1 Main St", "City": "New", "PostalCode": "111"}}


def test_cleared_values_are_sent_as_empty_strings() -> None:
    assert _fields.to_hubspot(MAPS, {"city": None, "name": "Jo"}) == {"city": "", "firstname": "Jo"}
    assert _fields.to_qbo(MAPS, {"name": None}) == {"GivenName": ""}


def test_merge_takes_a_field_changed_on_one_side_only() -> None:
    base = {"city": "A", "zip": "1"}
    merged = _fields.merge(base, {"city": "B", "zip": "1"}, {"city": "A", "zip": "2"}, winner="hubspot")
    assert merged == {"city": "B", "zip": "2"}


def test_merge_lets_the_conflict_winner_decide_a_field_changed_on_both_sides() -> None:
    base = {"city": "A"}
    assert _fields.merge(base, {"city": "B"}, {"city": "C"}, winner="hubspot") == {"city": "B"}
    assert _fields.merge(base, {"city": "B"}, {"city": "C"}, winner="quickbooks") == {"city": "C"}


def test_first_sync_fills_gaps_both_ways() -> None:
    merged = _fields.merge({}, {"city": "B", "zip": None}, {"city": None, "zip": "2"}, winner="hubspot")
    assert merged == {"city": "B", "zip": "2"}


def test_changed_lists_only_differing_fields() -> None:
    assert _fields.changed({"a": "1", "b": "2"}, {"a": "1", "b": "3"}) == {"b": "2"}


def test_mappings_can_be_switched_off_and_custom_ones_added() -> None:
    settings = ContactSettings(
        mappings={"city": False},
        custom_mappings=[FieldMapping(name="notes", hubspot_property="notes", qbo_field="Notes")],
    )
    names = [m.name for m in _fields.active_maps(MAPS, settings)]
    assert "city" not in names
    assert names[-1] == "notes"


def test_content_hash_ignores_key_order() -> None:
    assert _fields.content_hash({"a": "1", "b": None}) == _fields.content_hash({"b": None, "a": "1"})
