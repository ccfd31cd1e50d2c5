"""Many connections, one worker: each HubSpot portal syncs with its own QBO realm only (the same email in two
portals is two customers, one in each realm), and one paused connection holds up none of the others."""

from __future__ import annotations

import dataclasses

import pytest

from shared import connections
from shared.credentials import connect
from shared.domain import Kind, Provider
from shared.store import CredentialStatus, LinkStatus
from tests.integration.conftest import CONNECTION, Stack, eventually

pytestmark = pytest.mark.integration

OTHER = "globex"


@pytest.fixture
def connection_names() -> tuple[str, ...]:
    return (CONNECTION, OTHER)


def customer_emails(stack: Stack) -> list[str]:
    return sorted((c.get("PrimaryEmailAddr") or {}).get("Address", "") for c in stack.qbo_entities("Customer"))


def contact_emails(stack: Stack) -> list[str]:
    return sorted(contact.get("email", "") for contact in stack.hubspot_records("contacts"))


async def test_each_portal_syncs_with_its_own_realm_only(stack: Stack) -> None:
    acme, globex = stack, stack.connection(OTHER)
    acme.hubspot_edit("contacts", "create", properties={"email": "shared@example.com", "firstname": "Acme"})
    globex.hubspot_edit("contacts", "create", properties={"email": "shared@example.com", "firstname": "Globex"})
    globex.qbo_edit("Customer", "create", {"DisplayName": "Only Globex", "PrimaryEmailAddr": {"Address": "g@x.com"}})
    await stack.settle()

    assert customer_emails(acme) == ["shared@example.com"]
    assert [c["GivenName"] for c in acme.qbo_entities("Customer")] == ["Acme"]
    assert customer_emails(globex) == ["g@x.com", "shared@example.com"]
    assert contact_emails(globex) == ["g@x.com", "shared@example.com"]
    assert contact_emails(acme) == ["shared@example.com"]
    for name, count in ((CONNECTION, 1), (OTHER, 2)):
        links = await stack.store.list_links(name, Kind.CONTACT)
        assert [link.status for link in links] == [LinkStatus.SYNCED] * count


async def test_a_paused_connection_holds_up_none_of_the_others(stack: Stack) -> None:
    acme, globex = stack, stack.connection(OTHER)
    credentials = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
    assert credentials is not None
    stack.sandbox.qbo.tokens.revoke(credentials.refresh_token)  # acme's QBO admin disconnected the app
    acme.hubspot_edit("contacts", "create", properties={"email": "waits@acme.com"})

    async def paused() -> bool:
        stored = await stack.store.get_credentials(CONNECTION, Provider.QUICKBOOKS)
        return stored is not None and stored.status == CredentialStatus.REVOKED

    await eventually(paused)
    flowing = [f"flows-{n}@globex.com" for n in range(3)]
    for email in flowing:
        globex.hubspot_edit("contacts", "create", properties={"email": email})
    await eventually(lambda: customer_emails(globex) == flowing)  # (acme's deferred work keeps the stack unsettled)
    assert customer_emails(acme) == []
    globex_credentials = await stack.store.get_credentials(OTHER, Provider.QUICKBOOKS)
    assert globex_credentials is not None
    assert globex_credentials.status == CredentialStatus.ACTIVE


async def test_a_connection_paused_by_the_operator_waits_until_resumed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "STATUS_CHECK_SECONDS", 0.0)  # every apply re-reads the status
    acme = stack
    acme.hubspot_edit("contacts", "create", properties={"email": "before@acme.com"})
    await stack.settle()  # the worker holds acme's clients now
    for provider in Provider:  # `hsqbo connections pause acme`
        credentials = await stack.store.get_credentials(CONNECTION, provider)
        assert credentials is not None
        await stack.store.save_credentials(dataclasses.replace(credentials, status=CredentialStatus.PAUSED))
    acme.hubspot_edit("contacts", "create", properties={"email": "waits@acme.com"})
    globex = stack.connection(OTHER)
    globex.hubspot_edit("contacts", "create", properties={"email": "flows@globex.com"})
    await eventually(lambda: customer_emails(globex) == ["flows@globex.com"])
    assert customer_emails(acme) == ["before@acme.com"]

    for provider in Provider:  # `hsqbo connections resume acme`
        credentials = await stack.store.get_credentials(CONNECTION, provider)
        assert credentials is not None
        assert credentials.status == CredentialStatus.PAUSED  # a pause is not mistaken for a revocation
        await connect(stack.store, dataclasses.replace(credentials, status=CredentialStatus.ACTIVE))
    await eventually(lambda: customer_emails(acme) == ["before@acme.com", "waits@acme.com"])
