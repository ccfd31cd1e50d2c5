"""The receiver over real HTTP on loopback, with an in-memory publisher: every answer the issue lists."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import prometheus_client
from pydantic import AnyHttpUrl

from services.receiver import create_app
from shared import signatures
from shared.asgi import serving
from tests.receiver.conftest import InMemoryPublisher, WebhookClient, make_settings
from tests.receiver.test_hubspot import event
from tests.receiver.test_intuit import cloud_event


async def test_signed_hubspot_batch_is_queued_and_answered_200(
    client: WebhookClient, publisher: InMemoryPublisher
) -> None:
    response = await client.hubspot([event(eventId=1), event(eventId=2, objectId=124)])
    assert response.status == 200
    assert [e.object_id for e in publisher.published] == ["123", "124"]
    assert response.headers["x-request-id"]
    # The request id travels with each change, to the worker's log lines for it.
    assert {e.request_id for e in publisher.published} == {response.headers["x-request-id"]}


async def test_a_callers_request_id_is_the_one_its_changes_carry(
    client: WebhookClient, publisher: InMemoryPublisher
) -> None:
    body = orjson.dumps([event(eventId=3)])
    headers = {**client.hubspot_headers(body, "/webhooks/hubspot"), "X-Request-Id": "trace-42"}
    response = await client.hubspot([event(eventId=3)], headers=headers)
    assert response.status == 200
    assert [e.request_id for e in publisher.published] == ["trace-42"]


async def test_requests_without_an_id_each_get_a_new_one(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    answers = [await client.hubspot([event(eventId=number, objectId=200 + number)]) for number in (4, 5)]
    given = [response.headers["x-request-id"] for response in answers]
    assert len(set(given)) == 2
    assert [e.request_id for e in publisher.published] == given


async def test_wrong_hubspot_signature_is_401(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    body = orjson.dumps([event()])
    headers = client.hubspot_headers(body, "/webhooks/hubspot")
    headers["X-HubSpot-Signature-v3"] = signatures.hubspot_v3("another-secret", "POST", "x", body, "1")
    response = await client.hubspot(body, headers=headers)
    assert response.status == 401
    assert publisher.published == []


async def test_stale_hubspot_timestamp_is_401(client: WebhookClient) -> None:
    body = orjson.dumps([event()])
    headers = client.hubspot_headers(body, "/webhooks/hubspot", timestamp_ms=int(time.time() * 1000) - 301_000)
    response = await client.hubspot(body, headers=headers)
    assert response.status == 401


async def test_v1_signature_alone_is_refused_unless_enabled(client: WebhookClient) -> None:
    body = orjson.dumps([event()])
    headers = client.hubspot_headers(body, "/webhooks/hubspot")
    del headers["X-HubSpot-Signature-v3"]
    assert (await client.hubspot(body, headers=headers)).status == 401


async def test_v1_signature_is_accepted_for_legacy_apps_when_enabled(publisher: InMemoryPublisher) -> None:

    settings = make_settings(hubspot_allow_v1_signatures=True)
    async with serving(create_app(settings, publisher)) as server, aiohttp.ClientSession() as session:
        legacy = WebhookClient(session, server, settings)
        body = orjson.dumps([event()])
        headers = legacy.hubspot_headers(body, "/webhooks/hubspot")
        del headers["X-HubSpot-Signature-v3"]
        assert (await legacy.hubspot(body, headers=headers)).status == 200


async def test_query_string_with_encoded_characters_is_verified_as_hubspot_signs_it(
    client: WebhookClient, publisher: InMemoryPublisher
) -> None:
    response = await client.hubspot([event()], path="/webhooks/hubspot?tenant=acme%3Aeu&x=a%2Cb&q=a%20b")
    assert response.status == 200
    assert len(publisher.published) == 1


async def test_public_url_is_the_uri_hubspot_signed_behind_a_proxy(publisher: InMemoryPublisher) -> None:

    settings = make_settings(public_url=AnyHttpUrl("https://hooks.example.com"))
    async with serving(create_app(settings, publisher)) as server, aiohttp.ClientSession() as session:
        proxied = WebhookClient(session, server, settings)
        assert (await proxied.hubspot([event()])).status == 200


async def test_malformed_json_is_400_naming_the_problem(client: WebhookClient) -> None:
    response = await client.hubspot(b"[{not json")
    assert response.status == 400
    detail = (await response.json())["detail"]
    assert "not valid JSON" in detail


async def test_wrong_shape_is_400(client: WebhookClient) -> None:
    response = await client.hubspot([event(objectId=None)])
    assert response.status == 400
    assert "objectId" in (await response.json())["detail"]


async def test_body_over_the_limit_is_413(publisher: InMemoryPublisher) -> None:

    settings = make_settings(max_body_bytes=1000)
    async with serving(create_app(settings, publisher)) as server, aiohttp.ClientSession() as session:
        small = WebhookClient(session, server, settings)
        response = await small.hubspot([event(eventId=n) for n in range(20)])
        assert response.status == 413
        assert publisher.published == []


async def test_unsupported_content_type_is_415(client: WebhookClient) -> None:
    body = orjson.dumps([event()])
    headers = client.hubspot_headers(body, "/webhooks/hubspot")
    headers["Content-Type"] = "text/plain"
    assert (await client.hubspot(body, headers=headers)).status == 415


async def test_broker_down_is_503_and_nothing_is_remembered(
    client: WebhookClient, publisher: InMemoryPublisher
) -> None:
    publisher.up = False
    response = await client.hubspot([event()])
    assert response.status == 503
    assert response.headers["Retry-After"]
    publisher.up = True
    assert (await client.hubspot([event()])).status == 200  # the retry is queued, not taken for a duplicate
    assert len(publisher.published) == 1


async def test_redelivery_is_200_and_not_queued_twice(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    assert (await client.hubspot([event(attemptNumber=0)])).status == 200
    again = await client.hubspot([event(attemptNumber=1)])
    assert again.status == 200
    assert (await again.json()) == {"queued": 0, "duplicates": 1, "ignored": 0}
    assert len(publisher.published) == 1


async def test_duplicates_inside_one_batch_are_queued_once(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    assert (await client.hubspot([event(), event(attemptNumber=2)])).status == 200
    assert len(publisher.published) == 1


async def test_concurrent_duplicate_deliveries_are_queued_once(
    client: WebhookClient, publisher: InMemoryPublisher
) -> None:
    batches: list[Any] = [[event(eventId=n, objectId=n) for n in range(10)] for _ in range(8)]
    responses = await asyncio.gather(*(client.hubspot(batch) for batch in batches))
    assert {r.status for r in responses} == {200}
    assert sorted(int(e.object_id) for e in publisher.published) == list(range(10))


async def test_signed_intuit_cloudevents_are_queued(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    response = await client.intuit([cloud_event()], content_type="application/cloudevents+json")
    assert response.status == 200
    assert publisher.published[0].object_type == "customer"


async def test_intuit_classic_format_is_queued(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    body = {"eventNotifications": [{"realmId": "1", "dataChangeEvent": {"entities": [
        {"name": "Invoice", "id": "7", "operation": "Update", "lastUpdated": "2025-01-01T00:00:00Z"}]}}]}  # fmt: skip
    assert (await client.intuit(body)).status == 200
    assert publisher.published[0].object_id == "7"


async def test_intuit_signature_made_with_the_oauth_secret_is_401(client: WebhookClient) -> None:
    body = orjson.dumps([cloud_event()])
    response = await client.intuit(body, signature=signatures.intuit("oauth-client-secret", body))
    assert response.status == 401


async def test_intuit_missing_signature_is_401(client: WebhookClient) -> None:
    async with client.session.post(
        client.server.url + "/webhooks/intuit", data=b"[]", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 401


async def test_cloudevent_id_repeat_is_not_queued_twice(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    for _ in range(3):
        assert (await client.intuit([cloud_event()])).status == 200
    assert len(publisher.published) == 1


async def test_health_and_readiness(client: WebhookClient, publisher: InMemoryPublisher) -> None:
    async with client.session.get(client.server.url + "/healthz") as response:
        assert response.status == 200
    async with client.session.get(client.server.url + "/readyz") as response:
        assert response.status == 200
    publisher.up = False
    async with client.session.get(client.server.url + "/readyz") as response:
        assert response.status == 503


async def test_metrics_count_requests_by_outcome(client: WebhookClient) -> None:
    await client.hubspot([event()])
    await client.hubspot(b"nope")
    text = prometheus_client.generate_latest().decode()  # served on the metrics port (shared/health.py)
    assert 'hsqbo_webhook_requests_total{outcome="accepted",provider="hubspot"}' in text
    assert 'hsqbo_webhook_requests_total{outcome="malformed",provider="hubspot"}' in text
    assert "hsqbo_webhook_signature_failures_total" in text


async def test_the_public_webhook_port_serves_no_metrics(client: WebhookClient) -> None:
    async with client.session.get(client.server.url + "/metrics") as response:
        assert response.status == 404
