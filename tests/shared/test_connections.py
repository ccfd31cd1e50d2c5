"""A connection pauses when its account must be reconnected: a refused refresh (revoked) or a HubSpot token without
a scope a call needs (paused with the scopes to grant), and resumes once new credentials are stored. An operator's
pause (`hsqbo connections pause`) is neither: it stays `paused` until resumed."""

from __future__ import annotations

import dataclasses

import pytest

from services.run import local_connection
from shared.clients import MockTransport, Request, Response
from shared.config import Settings
from shared.connections import ConnectionPaused, ContextFactory
from shared.credentials import MISSING_SCOPES, connect, token_source
from shared.domain import Provider
from shared.errors import AuthRevoked, MissingScopes
from shared.store import Credentials, CredentialStatus, Store

CONNECTION = local_connection("acme", 101, "9130")
DEALS = "crm.objects.deals.read"


def _no_call(request: Request) -> Response:
    raise AssertionError(f"no API call expected: {request.method} {request.url}")


def _refused(scopes: tuple[str, ...] = (DEALS,)) -> MissingScopes:
    return MissingScopes("no scope", scopes=scopes, provider=Provider.HUBSPOT, status=403, code="MISSING_SCOPES")


async def test_missing_scopes_pause_the_connection_naming_the_scopes_until_reconnected(
    settings: Settings, store: Store
) -> None:
    contexts = ContextFactory(settings, store, MockTransport(_no_call))
    await contexts.get(CONNECTION)
    paused = await contexts.pause("acme", _refused())
    assert str(paused) == "hubspot authorization of 'acme' lacks scopes: reconnect to grant crm.objects.deals.read"
    assert paused.missing_scopes == (DEALS,)
    stored = await store.get_credentials("acme", Provider.HUBSPOT)
    assert stored is not None
    assert (stored.status, stored.extra) == (CredentialStatus.REVOKED, {MISSING_SCOPES: [DEALS]})
    assert stored.refresh_token == "r-1"  # the tokens are kept: only reconnecting replaces them

    with pytest.raises(ConnectionPaused) as again:  # every later apply: paused, with the same words, no API call
        await contexts.get(CONNECTION)
    assert again.value.missing_scopes == (DEALS,)
    assert "reconnect to grant crm.objects.deals.read" in str(again.value)

    await connect(store, Credentials(connection="acme", provider=Provider.HUBSPOT, access_token="a-2",
                                     refresh_token="r-2", expires_at=4e9))  # fmt: skip
    assert (await contexts.get(CONNECTION)).name == "acme"
    resumed = await store.get_credentials("acme", Provider.HUBSPOT)
    assert resumed is not None
    assert (resumed.status, resumed.extra) == (CredentialStatus.ACTIVE, {})


async def test_token_source_of_a_connection_paused_for_scopes_raises_missing_scopes(
    settings: Settings, store: Store
) -> None:
    await ContextFactory(settings, store, MockTransport(_no_call)).pause("acme", _refused())
    with pytest.raises(MissingScopes) as caught:
        await token_source(settings, store, connection="acme", provider=Provider.HUBSPOT,
                           transport=MockTransport(_no_call))  # fmt: skip
    assert caught.value.scopes == (DEALS,)
    await store.mark_revoked("acme", Provider.QUICKBOOKS)
    with pytest.raises(AuthRevoked) as revoked:
        await token_source(settings, store, connection="acme", provider=Provider.QUICKBOOKS,
                           transport=MockTransport(_no_call))  # fmt: skip
    assert not isinstance(revoked.value, MissingScopes)


async def test_a_refusal_naming_no_scope_still_pauses_with_a_hint(settings: Settings, store: Store) -> None:
    paused = await ContextFactory(settings, store, MockTransport(_no_call)).pause("acme", _refused(()))
    assert str(paused).endswith("lacks scopes: reconnect to grant the scopes HubSpot asked for")


async def test_an_operators_pause_stays_a_pause_whatever_a_call_in_flight_answers(
    settings: Settings, store: Store
) -> None:
    contexts = ContextFactory(settings, store, MockTransport(_no_call))
    await contexts.get(CONNECTION)
    for provider in Provider:  # `hsqbo connections pause acme`
        credentials = await store.get_credentials("acme", provider)
        assert credentials is not None
        await store.save_credentials(dataclasses.replace(credentials, status=CredentialStatus.PAUSED))
    await contexts.pause("acme", _refused())  # a call sent before the pause is refused for a scope
    await contexts.pause("acme", AuthRevoked("refused", provider=Provider.QUICKBOOKS))  # and one for its refresh
    for provider in Provider:
        stored = await store.get_credentials("acme", provider)
        assert stored is not None
        assert (stored.status, stored.extra) == (CredentialStatus.PAUSED, {})
    with pytest.raises(AuthRevoked, match="is paused: hsqbo connections resume acme"):
        await token_source(settings, store, connection="acme", provider=Provider.HUBSPOT,
                           transport=MockTransport(_no_call))  # fmt: skip
    with pytest.raises(ConnectionPaused):
        await contexts.get(CONNECTION)
