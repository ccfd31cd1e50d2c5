"""Scopes: a call outside the token's granted scopes is answered 403 MISSING_SCOPES with HubSpot's body, naming the
scopes of each requirement not met; OAuth installs grant the authorize URL's scopes, private-app tokens theirs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hsqbo_sandbox.hubspot._auth import DEFAULT_SCOPES
from hsqbo_sandbox.hubspot._scopes import EVERY_SCOPE, requirements
from tests.sandbox.hubspot.conftest import CLIENT_SECRET, Hub, association_to

WITHOUT_DEALS = [scope for scope in EVERY_SCOPE if not scope.startswith("crm.objects.deals.")]


def required(body: dict[str, Any]) -> list[list[str]]:
    return [error["context"]["requiredGranularScopes"] for error in body["errors"]]


async def test_a_call_outside_the_granted_scopes_is_403_missing_scopes(hub: Hub) -> None:
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    token = hub.sandbox.private_app_token(hub.portal_id, scopes=WITHOUT_DEALS)
    status, body = await hub.call("GET", f"/crm/v4/objects/invoices/{invoice['id']}/associations/deals", token=token)
    assert status == 403
    assert body["category"] == "MISSING_SCOPES"
    assert body["status"] == "error"
    assert body["message"].startswith("This app hasn't been granted all required scopes to make this call.")
    assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}
    assert body["correlationId"]
    assert required(body) == [["crm.objects.deals.read"]]  # the invoice side is granted: only deals is named
    assert body["errors"][0]["message"] == "One or more of the following scopes are required."
    status, _ = await hub.call("GET", f"/crm/v4/objects/invoices/{invoice['id']}/associations/contacts", token=token)
    assert status == 200


async def test_associations_need_both_types_scopes_read_for_reads_write_for_writes(hub: Hub) -> None:
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    deal = await hub.create("deals", {"dealname": "Deal", "dealstage": "closedwon"})
    read_only = hub.sandbox.private_app_token(
        hub.portal_id, scopes=["crm.objects.invoices.read", "crm.objects.deals.read", "crm.objects.invoices.write"]
    )
    path = f"/crm/v4/objects/invoices/{invoice['id']}/associations/default/deals/{deal['id']}"
    status, body = await hub.call("PUT", path, token=read_only)
    assert (status, required(body)) == (403, [["crm.objects.deals.write"]])
    status, body = await hub.call("GET", f"/crm/v3/objects/invoices/{invoice['id']}?associations=contacts",
                                  token=read_only)  # fmt: skip
    assert (status, required(body)) == (403, [["crm.objects.contacts.read"]])


async def test_a_create_with_associations_needs_the_associated_types_write_scope(hub: Hub) -> None:
    invoice = await hub.create("invoices", {"hs_currency": "USD"})
    deal = await hub.create("deals", {"dealname": "Deal", "dealstage": "closedwon"})
    token = hub.sandbox.private_app_token(hub.portal_id, scopes=WITHOUT_DEALS)
    body: dict[str, Any] = {
        "properties": {"hs_initial_amount": "10.00", "hs_initiated_date": "2026-03-02T00:00:00Z"},
        "associations": [association_to(invoice["id"], 542), association_to(deal["id"], 391)],
    }
    status, answer = await hub.call("POST", "/crm/v3/objects/commerce_payments", json=body, token=token)
    assert (status, required(answer)) == (403, [["crm.objects.deals.write"]])
    assert (await hub.call("GET", "/crm/v3/objects/commerce_payments"))[1]["results"] == []  # nothing written
    body["associations"] = body["associations"][:1]
    status, answer = await hub.call("POST", "/crm/v3/objects/commerce_payments", json=body, token=token)
    assert status == 201, answer


@pytest.mark.parametrize(
    ("method", "path", "granted", "missing"),
    [
        ("GET", "/crm/v3/objects/contacts", [], [["crm.objects.contacts.read"]]),
        ("POST", "/crm/v3/objects/contacts/search", ["crm.objects.contacts.write"], [["crm.objects.contacts.read"]]),
        ("PATCH", "/crm/v3/objects/contacts/1", ["crm.objects.contacts.read"], [["crm.objects.contacts.write"]]),
        ("GET", "/crm/v3/objects/products/1", [], [["crm.objects.products.read", "e-commerce"]]),
        ("GET", "/crm/v3/properties/invoices/x", ["crm.objects.invoices.read"], [["crm.schemas.invoices.read"]]),
        ("POST", "/crm/v3/properties/products", ["crm.objects.products.write"], [["e-commerce"]]),
    ],
)
async def test_each_object_endpoint_checks_its_scope(
    hub: Hub, method: str, path: str, granted: list[str], missing: list[list[str]]
) -> None:
    token = hub.sandbox.private_app_token(hub.portal_id, scopes=granted)
    status, body = await hub.call(method, path, token=token, json={} if method != "GET" else None)
    assert (status, required(body)) == (403, missing)


async def test_products_accept_the_legacy_e_commerce_scope(hub: Hub) -> None:
    token = hub.sandbox.private_app_token(hub.portal_id, scopes=["e-commerce"])
    assert (await hub.call("GET", "/crm/v3/objects/products", token=token))[0] == 200


async def test_oauth_install_grants_the_authorize_url_scopes(hub: Hub) -> None:
    params = {"client_id": hub.sandbox.client_id, "redirect_uri": "http://127.0.0.1:9/cb",
              "scope": "oauth crm.objects.contacts.read", "optional_scope": "crm.objects.companies.read"}  # fmt: skip
    async with hub.http.get(f"{hub.url}/oauth/authorize", params=params, allow_redirects=False) as response:
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    form = {"client_id": hub.sandbox.client_id, "client_secret": CLIENT_SECRET, "grant_type": "authorization_code",
            "code": code, "redirect_uri": params["redirect_uri"]}  # fmt: skip
    async with hub.http.post(f"{hub.url}/oauth/v1/token", data=form) as response:
        tokens = await response.json()
    assert tokens["scopes"] == ["oauth", "crm.objects.contacts.read", "crm.objects.companies.read"]
    token = tokens["access_token"]
    assert (await hub.call("GET", "/crm/v3/objects/contacts", token=token))[0] == 200
    assert (await hub.call("GET", "/crm/v3/objects/invoices", token=token))[0] == 403


async def test_control_tokens_grant_hsqbo_s_scopes_or_fewer(hub: Hub) -> None:
    full = await hub.control("POST", "tokens", json={"portal_id": hub.portal_id})
    assert full["scopes"] == DEFAULT_SCOPES.split()
    assert (await hub.call("GET", "/crm/v3/objects/deals", token=full["access_token"]))[0] == 200
    fewer = await hub.control("POST", "tokens", json={"portal_id": hub.portal_id, "kind": "private",
                                                      "scopes": ["crm.objects.contacts.read"]})  # fmt: skip
    assert fewer["scopes"] == ["crm.objects.contacts.read"]
    assert (await hub.call("GET", "/crm/v3/objects/deals", token=fewer["access_token"]))[0] == 403
    async with hub.http.post(f"{hub.url}/_sandbox/tokens", json={"portal_id": hub.portal_id, "scopes": "x"}) as bad:
        assert bad.status == 400


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/account-info/v3/details", [{"oauth"}]),
        ("GET", "/settings/v3/currencies/company-currency",
         [{"settings.currencies.read", "crm.objects.quotes.read", "crm.objects.quotes.write", "cpq.quotes.read",
           "cpq.quotes.write"}]),
        ("PUT", "/settings/v3/currencies/company-currency", [{"settings.currencies.write"}]),
        ("POST", "/crm/v4/associations/invoices/deals/batch/read",
         [{"crm.objects.invoices.read"}, {"crm.objects.deals.read"}]),
        ("POST", "/crm/v4/associations/invoices/deals/batch/create",
         [{"crm.objects.invoices.write"}, {"crm.objects.deals.write"}]),
        ("GET", "/crm/objects/2026-03/0-3/7", [{"crm.objects.deals.read"}]),
        ("POST", "/oauth/v1/token", []),
    ],
)  # fmt: skip
def test_requirements_of_the_settings_batch_and_dated_paths(method: str, path: str, needed: list[set[str]]) -> None:
    assert requirements(method, path, (), None) == [frozenset(alternatives) for alternatives in needed]
