"""The change envelope: one webhook event, normalized, as it travels through RabbitMQ. The events of one delivery
travel as one message (`encode_changes`), split per record by the worker (`decode_changes`).

Whichever provider and payload format an event came in, the worker sees the same fields. Webhooks are hints: the
worker re-reads the record, so the envelope says *what* changed, never the new values.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

import orjson

from shared.domain import Provider


class Operation(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    MERGED = "merged"
    RESTORED = "restored"
    VOIDED = "voided"
    EMAILED = "emailed"
    ASSOCIATION_CHANGED = "association_changed"
    # Not a provider's event: the reconciliation found the two sides' values apart. The worker re-reads and compares
    # both sides whatever the link's versions say (a value changed behind our back may not have moved the version of
    # the side the record syncs from).
    DRIFTED = "drifted"


@dataclasses.dataclass(frozen=True, slots=True)
class ChangeEnvelope:
    provider: Provider
    account_id: str  # HubSpot portalId / QBO realmId
    object_type: (
        str  # HubSpot: contact, company, product, line_item, invoice, commerce_payment...; QBO: lower-cased entity
    )
    object_id: str
    operation: Operation
    occurred_at_ms: int
    event_id: str  # the deduplication key: equal for a resend of the same event, different otherwise
    property_name: str | None = None  # HubSpot propertyChange only
    change_source: str | None = None  # HubSpot changeSource (CRM_UI, INTEGRATION...)
    source_id: str | None = None  # HubSpot sourceId: our app id on our own writes
    merged_ids: tuple[str, ...] = ()  # ids merged away into object_id (HubSpot mergedObjectIds, QBO deletedId)
    # The receiver's request id (X-Request-Id) of the webhook that brought the change, so the worker's log lines for
    # it can be found from the request's; None for a change the poller found.
    request_id: str | None = dataclasses.field(default=None, compare=False)

    @property
    def routing_key(self) -> str:
        """`provider.account.object_type.object_id`: lets consumers shard by record and keep per-record order."""
        return f"{self.provider}.{self.account_id}.{self.object_type}.{self.object_id}"

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, as JSON carries them. Spelled out: orjson writes a dict in a fifth of the time it takes
        over a dataclass, and one message carries up to a hundred of them (a test holds this list to the fields)."""
        return {
            "provider": self.provider,
            "account_id": self.account_id,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "operation": self.operation,
            "occurred_at_ms": self.occurred_at_ms,
            "event_id": self.event_id,
            "property_name": self.property_name,
            "change_source": self.change_source,
            "source_id": self.source_id,
            "merged_ids": self.merged_ids,
            "request_id": self.request_id,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())

    @classmethod
    def from_json(cls, data: bytes) -> ChangeEnvelope:
        return cls.from_dict(orjson.loads(data))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChangeEnvelope:
        if not isinstance(data, dict):
            raise TypeError("a change envelope is a JSON object")
        # Fields a newer hsqbo added are left out, so a worker still on the older version reads its messages.
        fields = {name: value for name, value in data.items() if name in _FIELD_NAMES}
        fields["provider"] = Provider(fields["provider"])
        fields["operation"] = Operation(fields["operation"])
        fields["merged_ids"] = tuple(fields.get("merged_ids", ()))
        return cls(**fields)


def encode_changes(envelopes: Sequence[ChangeEnvelope]) -> bytes:
    """The body of one message carrying the events of one delivery: a lone envelope as itself (the shape every
    hsqbo reads), several as a JSON array of envelopes."""
    return (
        envelopes[0].to_json() if len(envelopes) == 1 else orjson.dumps([envelope.as_dict() for envelope in envelopes])
    )


def decode_changes(data: bytes) -> list[ChangeEnvelope]:
    """The envelopes of a message body `encode_changes` wrote (one envelope, or an array of them)."""
    parsed = orjson.loads(data)
    if isinstance(parsed, list):
        return [ChangeEnvelope.from_dict(item) for item in parsed]
    return [ChangeEnvelope.from_dict(parsed)]


_FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(ChangeEnvelope))
