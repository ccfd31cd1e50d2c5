"""The change envelope round-trips through JSON, request id included, and tolerates fields a newer hsqbo adds."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from shared.domain import Provider
from shared.envelope import ChangeEnvelope, Operation, decode_changes, encode_changes

ENVELOPE = ChangeEnvelope(
    provider=Provider.QUICKBOOKS, account_id="9130", object_type="customer", object_id="58",
    operation=Operation.UPDATED, occurred_at_ms=1_700_000_000_000, event_id="e-1", request_id="req-1",
)  # fmt: skip


def test_an_envelope_round_trips_with_its_request_id() -> None:
    read = ChangeEnvelope.from_json(ENVELOPE.to_json())
    assert read == ENVELOPE
    assert read.request_id == "req-1"


def test_as_dict_names_every_field_as_orjson_writes_the_dataclass() -> None:
    merged = dataclasses.replace(ENVELOPE, merged_ids=("57",), property_name="email", source_id="1")
    assert list(merged.as_dict()) == [field.name for field in dataclasses.fields(ChangeEnvelope)]
    assert merged.to_json() == orjson.dumps(merged)  # the same bytes as before it was spelled out


def test_a_message_from_an_older_receiver_has_no_request_id() -> None:
    fields = orjson.loads(ENVELOPE.to_json())
    del fields["request_id"]
    assert ChangeEnvelope.from_json(orjson.dumps(fields)).request_id is None


def test_a_field_a_newer_hsqbo_added_is_ignored() -> None:
    fields = {**orjson.loads(ENVELOPE.to_json()), "added_later": 1}
    assert ChangeEnvelope.from_json(orjson.dumps(fields)) == ENVELOPE


def test_a_delivery_travels_as_one_body_and_splits_back_into_its_envelopes() -> None:
    delivery = [ENVELOPE, dataclasses.replace(ENVELOPE, object_id="59", event_id="e-2")]
    assert decode_changes(encode_changes(delivery)) == delivery
    assert encode_changes([ENVELOPE]) == ENVELOPE.to_json()  # a lone event is the envelope itself
    assert decode_changes(ENVELOPE.to_json()) == [ENVELOPE]


def test_a_body_of_anything_but_envelopes_is_refused() -> None:
    with pytest.raises(TypeError):
        decode_changes(b"[1, 2]")
