"""The app's side of HubSpot: its webhook subscriptions (webhooks API v3, developer API key; no scope). The
installing account's details (`GET /account-info/v3/details`) are `_account_info_api.py`'s.

- `GET /webhooks/v3/{appId}/subscriptions?hapikey=` -> `{"results": [{"id", "eventType", "propertyName"?,
  "objectTypeId"? (generic `object.*` types), "active", "createdAt", "updatedAt"}]}`: active and paused alike.
- `POST /webhooks/v3/{appId}/subscriptions?hapikey=` `{"eventType", "propertyName"?, "objectTypeId"?, "active"?}`
  -> 201 the subscription; created paused unless `active` is true (WH-DOC); at most 1000 per app.
- `DELETE /webhooks/v3/{appId}/subscriptions/{subscriptionId}?hapikey=` -> 204.

The developer API key authenticates the webhooks API only (a bearer token there is refused: stricter reading of
the legacy reference, which lists `hapikey` as its one authorization). An app id other than the configured one is
404. A project upload (`hs project upload`) is emulated by the control route `PUT /_sandbox/app/webhooks` with a
`webhooks-hsmeta.json` document: its `crmObjects` become generic subscriptions, its `legacyCrmObjects` classic ones,
replacing the app's list.

Leniency kept on purpose: deliveries are not filtered by the subscriptions (every change is sent), so the tests
that do not care about subscriptions need none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox.hubspot._api import json_body
from hsqbo_sandbox.hubspot._render import json_response

MAX_SUBSCRIPTIONS = 1000
OBJECT_TYPE_IDS = {
    "contact": "0-1", "company": "0-2", "deal": "0-3", "ticket": "0-5", "product": "0-7", "line_item": "0-8",
    "invoice": "0-53", "commerce_payment": "0-101",
}  # fmt: skip


@dataclasses.dataclass(slots=True)
class AppSubscription:
    id: int
    event_type: str
    property_name: str | None
    object_type_id: str | None
    active: bool
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": str(self.id), "eventType": self.event_type, "active": self.active}
        if self.property_name:
            body["propertyName"] = self.property_name
        if self.object_type_id:
            body["objectTypeId"] = self.object_type_id
        body["createdAt"] = _iso(self.created_at)
        body["updatedAt"] = _iso(self.updated_at)
        return body


class AppSubscriptions:
    """The configured app's webhook subscriptions."""

    def __init__(self, clock: SandboxClock) -> None:
        self.clock = clock
        self._by_id: dict[int, AppSubscription] = {}
        self._next_id = 1

    def __iter__(self) -> Any:
        return iter(sorted(self._by_id.values(), key=lambda subscription: subscription.id))

    def add(self, event_type: str, *, property_name: str | None = None, object_type_id: str | None = None,
            active: bool = False) -> AppSubscription:  # fmt: skip
        if len(self._by_id) >= MAX_SUBSCRIPTIONS:
            raise ValueError(f"Couldn't create another subscription for this app ({MAX_SUBSCRIPTIONS})")
        now = self.clock.now()
        subscription = AppSubscription(self._next_id, event_type, property_name, object_type_id, active, now, now)
        self._by_id[subscription.id] = subscription
        self._next_id += 1
        return subscription

    def delete(self, subscription_id: int) -> bool:
        return self._by_id.pop(subscription_id, None) is not None

    def upload(self, document: Mapping[str, Any]) -> list[AppSubscription]:
        """Replace every subscription with those a `webhooks-hsmeta.json` declares (as `hs project upload`)."""
        declared = document.get("config", {}).get("subscriptions", {})
        if not isinstance(declared, dict):
            raise ValueError("config.subscriptions must be an object")
        self._by_id.clear()
        for entry in declared.get("crmObjects", ()):
            object_type = str(entry.get("objectType", ""))
            if object_type not in OBJECT_TYPE_IDS:
                raise ValueError(f"unknown objectType {object_type!r}")
            self.add(str(entry["subscriptionType"]), property_name=entry.get("propertyName"),
                     object_type_id=OBJECT_TYPE_IDS[object_type], active=bool(entry.get("active", False)))  # fmt: skip
        for entry in declared.get("legacyCrmObjects", ()):
            self.add(str(entry["subscriptionType"]), property_name=entry.get("propertyName"),
                     active=bool(entry.get("active", False)))  # fmt: skip
        return list(self)

    def dump(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(subscription) for subscription in self]

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._by_id = {int(row["id"]): AppSubscription(**row) for row in rows}
        self._next_id = max(self._by_id, default=0) + 1


class AppApi:
    def __init__(self, subscriptions: AppSubscriptions, *, app_id: str, developer_api_key: str) -> None:
        self.subscriptions = subscriptions
        self.app_id = app_id
        self.developer_api_key = developer_api_key

    def routes(self) -> list[Route]:
        base = "/webhooks/v3/{appId}/subscriptions"
        return [
            Route(base, self.list_subscriptions, methods=["GET"]),
            Route(base, self.create_subscription, methods=["POST"]),
            Route(base + "/{subscriptionId}", self.delete_subscription, methods=["DELETE"]),
        ]

    def _refusal(self, request: Request) -> Response | None:
        key = request.query_params.get("hapikey", "")
        if not key or not secrets.compare_digest(key, self.developer_api_key):
            return _error(401, "INVALID_AUTHENTICATION",
                          "The API key provided is invalid. View or manage your API key here: "
                          "https://app.hubspot.com/l/api-key/")  # fmt: skip
        if request.path_params["appId"] != self.app_id:
            return _error(404, "OBJECT_NOT_FOUND", f"Unable to find app {request.path_params['appId']}")
        return None

    async def list_subscriptions(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        return json_response({"results": [subscription.to_json() for subscription in self.subscriptions]})

    async def create_subscription(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("eventType"), str):
            return _error(400, "VALIDATION_ERROR", "eventType is required")
        try:
            subscription = self.subscriptions.add(
                body["eventType"], property_name=body.get("propertyName"), object_type_id=body.get("objectTypeId"),
                active=body.get("active") is True,
            )  # fmt: skip
        except ValueError as exc:
            return _error(400, "VALIDATION_ERROR", str(exc))
        return json_response(subscription.to_json(), 201)

    async def delete_subscription(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        text = request.path_params["subscriptionId"]
        if not text.isdigit() or not self.subscriptions.delete(int(text)):
            return _error(404, "OBJECT_NOT_FOUND", f"Unable to find subscription {text}")
        return Response(status_code=204)


def _error(status: int, category: str, message: str) -> Response:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return json_response(body, status)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
