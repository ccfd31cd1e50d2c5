"""`run_pass` (backfill, reconciliation): a connection whose HubSpot token lacks a scope the pass needs is paused,
with "reconnect to grant X", and the pass goes on with the other connections."""

from __future__ import annotations

from pathlib import Path

from services.poller import Tally, run_pass
from services.poller._source import Publish
from services.run import local_connection, with_local_app
from shared.config import Settings
from shared.connections import SyncContext
from shared.credentials import MISSING_SCOPES
from shared.domain import Provider
from shared.errors import MissingScopes
from shared.store import Credentials, CredentialStatus, open_store
from shared.syncconfig import SyncSettings


async def test_a_pass_refused_for_want_of_a_scope_pauses_that_connection_only(tmp_path: Path) -> None:
    settings = with_local_app(Settings(store_url=f"sqlite:///{tmp_path / 'store.db'}", api_rate_limits=False))
    sync = SyncSettings(connection=[local_connection("acme", 101, "9130"), local_connection("globex", 102, "9131")])
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        for name in ("acme", "globex"):
            for provider in Provider:
                await store.save_credentials(Credentials(connection=name, provider=provider, access_token="a",
                                                         refresh_token="", expires_at=4e9))  # fmt: skip

    async def one_pass(ctx: SyncContext, publish: Publish | None) -> list[Tally]:
        if ctx.name == "acme":
            raise MissingScopes("no", scopes=("crm.objects.deals.read",), provider=Provider.HUBSPOT, status=403)
        return []

    results = await run_pass(settings, sync, one_pass, dry_run=True)
    assert results == {
        "acme": "hubspot authorization of 'acme' lacks scopes: reconnect to grant crm.objects.deals.read",
        "globex": [],
    }
    async with open_store(settings.store_url, encryption_key=settings.encryption_key) as store:
        paused = await store.get_credentials("acme", Provider.HUBSPOT)
        assert paused is not None
        assert (paused.status, paused.extra) == (CredentialStatus.REVOKED, {MISSING_SCOPES: ["crm.objects.deals.read"]})
