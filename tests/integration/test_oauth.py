"""OAuth across a run: access tokens expiring and QBO's refresh token rotating mid-run fail no change; a revoked
refresh token pauses the connection (credentials `revoked`, `hsqbo_connection_paused` 1, activity `paused`) without
a retry storm, and reconnecting applies every change that waited. A HubSpot private-app token that stops working
(revoked or rotated in HubSpot) pauses the connection the same way, until a working token is stored. So does a HubSpot
token without a scope a call needs (403 MISSING_SCOPES): paused with "reconnect to grant X", until the status page's
Connect grants hsqbo's scopes."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from prometheus_client import REGISTRY

from services.status import StatusPage
from shared.asgi import serving
from shared.clients import REQUESTED_SCOPES, Call, required_scopes
from shared.credentials import MISSING_SCOPES, connect
from shared.domain import Kind, Provider
from shared.store import Credentials, CredentialStatus, LinkStatus
from tests.integration.conftest import CONNECTION, Stack, eventually
from tests.integration.test_payments import ONLY_PAYMENTS, hubspot_payments, linked_invoice, qbo_customer, qbo_payment

pytestmark = pytest.mark.integration


def customer_emails(stack: Stack) -> list[str]:
    return [(c.get("PrimaryEmailAddr") or {}).get("Address", "") for c in stack.qbo_entities("Customer")]


def contact_emails(stack: Stack) -> list[str]:
    return [contact.get("email", "") for contact in stack.hubspot_records("contacts")]


def create_contacts(stack: Stack, prefix: str, count: int) -> list[str]:
    emails = [f"{prefix}-{n}@example.com" for n in range(count)]
    for email in emails:
        stack.hubspot_edit("contacts", "create", properties={"email": email, "firstname": prefix})
    return emails


async def test_expired_access_tokens_and_rotated_refresh_token_mid_run_fail_no_change(stack: Stack) -> None:
    first = create_contacts(stack, "before", 5)
    await stack.settle()
    before = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
    stack.sandbox.clock.advance(3700)  # every access token issued so far has expired, at both providers
    later = create_contacts(stack, "after", 5)
    await stack.settle()

    after = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
    assert before is not None
    assert after is not None
    assert after.refresh_token != before.refresh_token  # QBO rotated it; the store holds the new one
    assert sorted(customer_emails(stack)) == sorted(first + later)
    links = await stack.store.list_links(CONNECTION, Kind.CONTACT)
    assert {link.status for link in links} == {LinkStatus.SYNCED}


async def test_revoked_refresh_token_pauses_the_connection_until_reconnected_and_loses_no_change(
    stack: Stack,
) -> None:
    credentials = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
    assert credentials is not None
    stack.sandbox.qbo.tokens.revoke(credentials.refresh_token)  # the user disconnected the app in QBO

    async def revoked() -> bool:
        stored = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
        return stored is not None and stored.status == CredentialStatus.REVOKED

    waiting = create_contacts(stack, "first", 1)
    await eventually(revoked)
    paused = {"connection": CONNECTION, "provider": "quickbooks"}
    assert REGISTRY.get_sample_value("hsqbo_connection_paused", paused) == 1
    calls_when_paused = stack.sandbox.qbo.requests.count()

    waiting += create_contacts(stack, "second", 3)

    async def all_deferred() -> bool:
        lines = await stack.store.activity(CONNECTION, Kind.CONTACT, limit=100)
        return sum(1 for line in lines if line.action == "paused") >= len(waiting)

    await eventually(all_deferred)
    assert stack.sandbox.qbo.requests.count() == calls_when_paused  # paused: no call, so no retry storm
    assert customer_emails(stack) == []
    assert await stack.store.list_links(CONNECTION, Kind.CONTACT, status=LinkStatus.FAILING) == []

    tokens = stack.sandbox.qbo.issue_token(stack.realm_id)  # the user reconnects
    await connect(
        stack.store,
        Credentials(
            connection=CONNECTION,
            provider=Provider.QUICKBOOKS,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            expires_at=time.time() + tokens["expires_in"],
        ),
    )
    await stack.settle()

    assert sorted(customer_emails(stack)) == sorted(waiting)
    assert REGISTRY.get_sample_value("hsqbo_connection_paused", paused) == 0


def qbo_customers(stack: Stack, prefix: str, count: int) -> list[str]:
    emails = [f"{prefix}-{n}@example.com" for n in range(count)]
    for n, email in enumerate(emails):
        stack.qbo_edit("Customer", "create", {"DisplayName": f"{prefix} {n}", "PrimaryEmailAddr": {"Address": email}})
    return emails


async def use_private_app_token(stack: Stack, token: str) -> None:
    """What `hsqbo` stores for a private app: its static token, with no refresh token."""
    await connect(
        stack.store, Credentials(connection=CONNECTION, provider=Provider.HUBSPOT, access_token=token, refresh_token="")
    )


async def test_revoked_private_app_token_pauses_the_connection_until_a_new_token_and_loses_no_change(
    stack: Stack,
) -> None:
    token = stack.sandbox.hubspot.private_app_token(stack.portal_id)
    await use_private_app_token(stack, token)
    synced = qbo_customers(stack, "before", 2)
    await stack.settle()
    assert sorted(contact_emails(stack)) == sorted(synced)

    stack.sandbox.hubspot.tokens.revoke(token)  # an admin rotated the private app's token in HubSpot
    waiting = qbo_customers(stack, "waiting", 3)

    async def revoked() -> bool:
        stored = await stack.store.get_credentials(CONNECTION, Provider.HUBSPOT)
        return stored is not None and stored.status == CredentialStatus.REVOKED

    await eventually(revoked)
    paused = {"connection": CONNECTION, "provider": "hubspot"}
    assert REGISTRY.get_sample_value("hsqbo_connection_paused", paused) == 1
    assert await stack.store.list_links(CONNECTION, Kind.CONTACT, status=LinkStatus.FAILING) == []

    await use_private_app_token(stack, stack.sandbox.hubspot.private_app_token(stack.portal_id))  # the new token
    await stack.settle()

    assert sorted(contact_emails(stack)) == sorted(synced + waiting)
    assert REGISTRY.get_sample_value("hsqbo_connection_paused", paused) == 0


DEALS = ("crm.objects.deals.read", "crm.objects.deals.write")


@pytest.mark.parametrize("sync_overrides", [ONLY_PAYMENTS], indirect=True)
async def test_missing_scope_pauses_connection(stack: Stack) -> None:
    # Installed before hsqbo asked for deals: the token lacks the deals scopes a QBO payment's apply needs.
    narrow = stack.sandbox.hubspot.issue_token(stack.portal_id, scopes=[s for s in REQUESTED_SCOPES if s not in DEALS])
    await connect(stack.store, Credentials(
        connection=CONNECTION, provider=Provider.HUBSPOT, access_token=narrow.access_token,
        refresh_token=str(narrow.refresh_token), expires_at=time.time() + narrow.expires_in,
    ))  # fmt: skip
    customer = qbo_customer(stack)
    pairs = [await linked_invoice(stack, customer, amount) for amount in (100, 200)]
    deal = stack.hubspot_edit("deals", "create", properties={"dealname": "Renewal", "dealstage": "closedwon"})
    stack.hubspot_edit("invoices", "associate", id=pairs[0].hubspot_id, to_object_type="deals", to_id=deal["id"])
    payments = [
        qbo_payment(stack, customer, {pair.qbo_id: amount}) for pair, amount in zip(pairs, (100, 200), strict=True)
    ]

    async def deferred() -> list[str]:
        lines = await stack.store.activity(CONNECTION, Kind.PAYMENT, limit=100)
        return [line.detail for line in lines if line.action == "paused"]

    details = await eventually(lambda: _at_least(deferred, len(payments)))
    assert all(detail.endswith("lacks scopes: reconnect to grant crm.objects.deals.read") for detail in details)
    stored = await stack.store.get_credentials(CONNECTION, Provider.HUBSPOT)
    assert stored is not None
    assert (stored.status, stored.extra[MISSING_SCOPES]) == (CredentialStatus.REVOKED, ["crm.objects.deals.read"])
    assert REGISTRY.get_sample_value("hsqbo_connection_paused", {"connection": CONNECTION, "provider": "hubspot"}) == 1
    assert await stack.store.list_links(CONNECTION, Kind.PAYMENT, status=LinkStatus.FAILING) == []  # none failing
    assert hubspot_payments(stack) == []
    refused = stack.sandbox.hubspot.requests.count(status=403)
    assert 1 <= refused <= len(payments)  # paused at the first refusal: no record after record

    status = StatusPage(stack.settings, stack.sync, stack.store)
    jar = aiohttp.CookieJar(unsafe=True)  # keeps the page's session cookie on 127.0.0.1, as a browser does
    async with serving(status.app(password=None)) as page, aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(page.url) as overview:
            assert "paused: reconnect to grant crm.objects.deals.read" in await overview.text()
        # Reconnect: the Connect link goes through HubSpot's consent screen, asking for every scope hsqbo needs.
        async with session.get(f"{page.url}/connections/{CONNECTION}/connect/hubspot") as connected:
            assert f"{CONNECTION}: hubspot connected" in await connected.text()
    await stack.settle()

    assert sorted(float(p["hs_initial_amount"]) for p in hubspot_payments(stack)) == [100.0, 200.0]
    portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal
    assert len(portal.associations.targets(("deals", int(deal["id"])), "commerce_payments")) == 1
    assert stack.sandbox.hubspot.requests.count(status=403) == refused
    assert REGISTRY.get_sample_value("hsqbo_connection_paused", {"connection": CONNECTION, "provider": "hubspot"}) == 0
    # Every HubSpot call of the run is in the scope table, within what hsqbo requests.
    for request in stack.sandbox.hubspot.requests.list():
        call = Call(request.method, request.path, urllib.parse.parse_qsl(request.query))
        assert required_scopes(call) <= set(REQUESTED_SCOPES), f"{request.method} {request.path}"


async def _at_least(found: Callable[[], Awaitable[list[str]]], count: int) -> list[str]:
    items = await found()
    return items if len(items) >= count else []
