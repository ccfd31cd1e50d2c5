"""QBO webhooks: change events encoded as Intuit sends them and signed with `intuit-signature`.

- CloudEvents (default): a JSON array, `type` = `qbo.<entity>.<verb>.v1` (created, updated, deleted, merged,
  voided), `id` repeated on a resend, `intuitaccountid` = realmId, `intuitentityid`, `time`, `data` ({} or
  `{"deletedid": ...}` for a merge); Content-Type `application/cloudevents+json`.
- classic: `{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{name, id, operation,
  lastUpdated[, deletedId]}]}}]}`; Content-Type `application/json`.
Deliveries are per realm (Intuit sends classic notifications one realm at a time, and head-of-line blocking is per
realm here). Only a 200 within 3 s acknowledges; retries follow Intuit's schedule times `retry_scale`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import uuid
from typing import Any

import orjson

from hsqbo_sandbox._faults import Faults
from hsqbo_sandbox._webhooks import Event, WebhookDispatcher
from hsqbo_sandbox.qbo._rules import Change
from hsqbo_sandbox.qbo._timestamps import utc_time
from shared import signatures

FORMATS = ("cloudevents", "classic")
# 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h (the last delay repeats) - Intuit's best practices
RETRY_DELAYS = (10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0)
ACK_TIMEOUT_SECONDS = 3.0
VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Void": "voided",
         "Emailed": "emailed"}  # fmt: skip


def change_event(realm_id: str, change: Change) -> Event:
    event: Event = {
        "realm": realm_id,
        "entity": change.entity,
        "id": change.entity_id,
        "operation": change.operation,
        "time": change.time,
        "event_id": f"{uuid.uuid4()}-{change.entity}-{change.entity_id}",
    }
    if change.deleted_id is not None:
        event["deleted_id"] = change.deleted_id
    return event


def encode_cloudevents(events: list[Event], source: str) -> bytes:
    return orjson.dumps(
        [
            {
                "specversion": "1.0",
                "id": event["event_id"],
                "source": source,
                "type": f"qbo.{event['entity'].lower()}.{VERBS[event['operation']]}.v1",
                "datacontenttype": "application/json",
                "time": utc_time(event["time"]),
                "intuitentityid": event["id"],
                "intuitaccountid": event["realm"],
                "data": {"deletedid": event["deleted_id"]} if "deleted_id" in event else {},
            }
            for event in events
        ]
    )


def encode_classic(events: list[Event]) -> bytes:
    notifications = []
    for realm_id, realm_events in itertools.groupby(events, key=lambda event: str(event["realm"])):
        entities: list[dict[str, Any]] = []
        for event in realm_events:
            entity = {"name": event["entity"], "id": event["id"], "operation": event["operation"],
                      "lastUpdated": utc_time(event["time"])}  # fmt: skip
            if "deleted_id" in event:
                entity["deletedId"] = event["deleted_id"]
            entities.append(entity)
        notifications.append({"realmId": realm_id, "dataChangeEvent": {"entities": entities}})
    return orjson.dumps({"eventNotifications": notifications})


def make_dispatcher(
    url: str | None, *, event_format: str, verifier_token: str | None, client_id: str, retry_scale: float,
    faults: Faults,
) -> WebhookDispatcher:  # fmt: skip
    if event_format not in FORMATS:
        raise ValueError(f"webhook format must be one of {FORMATS}")
    source = "intuit." + base64.b64encode(hashlib.sha256(client_id.encode()).digest()).decode()

    def sign(body: bytes, url: str) -> dict[str, str]:
        return {"intuit-signature": signatures.intuit(verifier_token, body)} if verifier_token else {}

    def encode(events: list[Event]) -> bytes:
        return encode_cloudevents(events, source) if event_format == "cloudevents" else encode_classic(events)

    return WebhookDispatcher(
        url,
        encode_batch=encode,
        sign=sign,
        content_type="application/cloudevents+json" if event_format == "cloudevents" else "application/json",
        max_batch=50,
        retry_delays=[delay * retry_scale for delay in RETRY_DELAYS],
        head_of_line_blocking=True,
        partition=lambda event: str(event["realm"]),
        faults=faults,
        ack_timeout_seconds=ACK_TIMEOUT_SECONDS,
        is_ack=lambda status: status == 200,
    )
