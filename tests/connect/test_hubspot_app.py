"""`deploy/hubspot-app/`, the HubSpot project `hs project upload` sends, declares exactly what the code uses: the OAuth
scopes hsqbo asks for and the webhook subscriptions it needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.connect import _subscriptions
from services.status._connect import SCOPES
from shared.clients import REQUESTED_SCOPES
from shared.domain import Provider

PROJECT = Path(__file__).parents[2] / "deploy" / "hubspot-app"


def _read(relative: str) -> Any:
    return json.loads((PROJECT / relative).read_text())


def test_the_project_is_a_2025_2_developer_platform_project() -> None:
    project = _read("hsproject.json")
    assert project["platformVersion"] == "2025.2"
    assert (PROJECT / project["srcDir"] / "app" / "app-hsmeta.json").is_file()
    app = _read("src/app/app-hsmeta.json")
    assert (app["type"], app["config"]["auth"]["type"]) == ("app", "oauth")


def test_the_app_asks_for_exactly_the_scopes_hsqbo_requests() -> None:
    """The scope table (`shared/clients/_scopes.py`) is the one list: the app's required scopes, each once, and the
    consent URL's `scope` (HubSpot refuses an install URL without every required scope)."""
    auth = _read("src/app/app-hsmeta.json")["config"]["auth"]
    assert sorted(auth["requiredScopes"]) == sorted(REQUESTED_SCOPES)
    assert set(SCOPES[Provider.HUBSPOT].split()) == set(REQUESTED_SCOPES)
    assert auth["optionalScopes"] == auth["conditionallyRequiredScopes"] == []


def test_the_redirect_urls_are_the_status_pages_callbacks() -> None:
    urls = _read("src/app/app-hsmeta.json")["config"]["auth"]["redirectUrls"]
    assert urls
    assert all(url.endswith("/oauth/callback/hubspot") for url in urls)
    assert all(url.startswith("https://") or url.startswith("http://localhost") for url in urls)


def test_the_app_subscribes_to_every_object_and_property_hsqbo_syncs() -> None:
    declared = _subscriptions.from_app_file(_read("src/app/webhooks/webhooks-hsmeta.json"))
    assert declared == _subscriptions.required()


def test_the_webhooks_go_to_the_receivers_hubspot_path() -> None:
    settings = _read("src/app/webhooks/webhooks-hsmeta.json")["config"]["settings"]
    assert settings["targetUrl"].startswith("https://")
    assert settings["targetUrl"].endswith("/webhooks/hubspot")
