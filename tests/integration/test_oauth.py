"""OAuth across a run: access tokens expiring and QBO's refresh token rotating mid-run fail no change; a revoked
refresh token pauses the connection (credentials `revoked`, `hsqbo_connection_paused` 1, activity `paused`) without
a retry storm, and reconnecting applies every change that waited. A HubSpot private-app token that stops working
(revoked or rotated in HubSpot) pauses the connection the same way, until a working token is stored."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from shared.credentials import connect
from shared.envelope import Provider
from shared.store import Credentials, CredentialStatus, Kind, LinkStatus
from tests.integration.conftest import CONNECTION, Stack, eventually

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
