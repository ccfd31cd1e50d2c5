"""`hsqbo config check`'s parts that need no network (`services/connect/_checks.py`)."""

from __future__ import annotations

import orjson
from pydantic import SecretStr

from services.connect import _subscriptions
from services.connect._checks import settings_problems, subscription_problems, without_password
from shared.clients import MockTransport, Request, Response
from shared.config import Settings
from shared.syncconfig import SyncSettings

KEY = "dev-key-123"


def test_missing_settings_are_named_one_per_line() -> None:
    problems = settings_problems(Settings(public_url="http://hsqbo.example.com"))
    assert "HSQBO_HUBSPOT_CLIENT_SECRET is not set" in problems
    assert "HSQBO_ENCRYPTION_KEY is not set" in problems
    assert any("HSQBO_PUBLIC_URL" in problem and "not https" in problem for problem in problems)


def test_urls_are_shown_without_their_password() -> None:
    assert without_password("amqp://guest:s3cret@rabbit:5672/vhost") == "amqp://rabbit:5672/vhost"
    assert "pw" not in without_password("postgresql://hsqbo:pw@db/hsqbo?sslmode=require")


def _app(results: list[dict[str, object]], status: int = 200) -> MockTransport:
    def answer(request: Request) -> Response:
        return Response(status, {"Content-Type": "application/json"}, orjson.dumps({"results": results}))

    return MockTransport(answer)


async def test_each_missing_subscription_is_named() -> None:
    settings = Settings(hubspot_app_id="515", hubspot_developer_api_key=SecretStr(KEY))
    wanted = _subscriptions.required()
    present = [
        {"id": str(n), "eventType": f"object.{s.action}", "objectTypeId": _subscriptions.object_type_id(s.object_type),
         **({"propertyName": s.property_name} if s.property_name else {}), "active": True}
        for n, s in enumerate(wanted) if str(s) != "invoice.propertyChange (hs_number)"
    ]  # fmt: skip
    transport = _app(present)
    problems = await subscription_problems(settings, SyncSettings(), transport)
    assert problems == ["missing HubSpot webhook subscription: invoice.propertyChange (hs_number)"]
    [request] = transport.requests
    assert request.url.endswith(f"/webhooks/v3/515/subscriptions?hapikey={KEY}")


async def test_a_refused_developer_key_or_unset_app_is_one_problem_without_the_key() -> None:
    settings = Settings(hubspot_app_id="515", hubspot_developer_api_key=SecretStr(KEY))
    [problem] = await subscription_problems(settings, SyncSettings(), _app([], status=401))
    assert "refused HSQBO_HUBSPOT_DEVELOPER_API_KEY" in problem
    assert KEY not in problem
    [problem] = await subscription_problems(Settings(hubspot_app_id="515"), SyncSettings(), _app([]))
    assert "HSQBO_HUBSPOT_DEVELOPER_API_KEY is required but not set" in problem
