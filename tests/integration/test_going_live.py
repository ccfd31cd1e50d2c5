"""docs/going-live.md, walked against the sandboxes as written: the HubSpot project uploaded, `hsqbo connect`
making both halves of a connection from the OAuth answers (no id copied by hand), `hsqbo config check` green, then
naming a deleted webhook subscription and a revoked token. Every `hsqbo` command runs as its own process, finding
its settings in the one env file (`HSQBO_ENV_FILE`) as the guide says."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet

from hsqbo_sandbox import RunningSandbox, SandboxOptions, start_sandbox
from hsqbo_sandbox._options import DEFAULT_DEVELOPER_API_KEY
from services.run import sandbox_apps
from shared.config import Settings
from shared.domain import Provider
from shared.store import open_store
from shared.syncconfig import load_sync_settings

ROOT = Path(__file__).parents[2]
APP_WEBHOOKS = ROOT / "deploy/hubspot-app/src/app/webhooks/webhooks-hsmeta.json"
APP = {"hubspot_client_id": "hsqbo-golive", "hubspot_client_secret": "golive-secret", "hubspot_app_id": "515151",
       "qbo_client_id": "hsqbo-golive-qbo", "qbo_client_secret": "golive-qbo-secret"}  # fmt: skip


class Guide:
    """The reader of docs/going-live.md: an env file, the sandboxes as the two providers, `hsqbo` on a terminal."""

    def __init__(self, sandbox: RunningSandbox, env_file: Path, settings: dict[str, str]) -> None:
        self.sandbox = sandbox
        self.env_file = env_file
        self.settings = settings
        self.write_env_file()

    def write_env_file(self, **more: str) -> None:
        self.settings.update(more)
        self.env_file.write_text("".join(f"{name}={value}\n" for name, value in self.settings.items()))

    async def hsqbo(
        self, *args: str, answer_consent: bool = False, stdin: str = "", consent_extra: str = ""
    ) -> tuple[int, str]:
        """Run `hsqbo ARGS`; with `answer_consent`, approve the consent URL it prints (plus `consent_extra`, the
        sandbox's pick of an account) and paste the redirect back; `stdin` is typed in otherwise."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.env_file.parent),
               "HSQBO_ENV_FILE": str(self.env_file), "PYTHONPATH": str(ROOT)}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", *args, env=env, cwd=self.env_file.parent,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        assert process.stdout is not None
        assert process.stdin is not None
        said: list[str] = []
        if answer_consent:
            while not (line := (await process.stdout.readline()).decode()).startswith("http"):
                assert line, "".join(said)
                said.append(line)
            said.append(line)
            process.stdin.write((await self.approve(line.strip() + consent_extra) + "\n").encode())
            await process.stdin.drain()
        elif stdin:
            process.stdin.write(stdin.encode())
            await process.stdin.drain()
        process.stdin.close()
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
        return await process.wait(), "".join(said) + rest.decode()

    async def approve(self, consent_url: str) -> str:
        """The operator clicks "Connect app" on the provider's screen: the address the browser is sent back to."""
        async with aiohttp.ClientSession() as http, http.get(consent_url, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def control(self, method: str, path: str, body: object = None) -> object:
        url = f"{self.sandbox.hubspot_server.url}/_sandbox/{path}"
        async with aiohttp.ClientSession() as http, http.request(method, url, json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json()


@pytest.fixture
async def guide(tmp_path: Path) -> AsyncIterator[Guide]:
    key = Fernet.generate_key().decode()
    app = Settings.model_validate({**APP, "hubspot_developer_api_key": DEFAULT_DEVELOPER_API_KEY})
    sandbox = await start_sandbox(SandboxOptions(hubspot_port=0, qbo_port=0, apps=sandbox_apps(app)))
    hubspot, qbo = sandbox.hubspot_server.url, sandbox.qbo_server.url
    values = {f"HSQBO_{name.upper()}": value for name, value in APP.items()} | {
        "HSQBO_HUBSPOT_DEVELOPER_API_KEY": DEFAULT_DEVELOPER_API_KEY, "HSQBO_INTUIT_VERIFIER_TOKEN": "golive-verifier",
        "HSQBO_ENCRYPTION_KEY": key,
        "HSQBO_STORE_URL": f"sqlite:///{tmp_path / 'hsqbo.db'}", "HSQBO_CONFIG": str(tmp_path / "hsqbo.toml"),
        "HSQBO_HUBSPOT_BASE_URL": hubspot, "HSQBO_HUBSPOT_AUTHORIZE_URL": f"{hubspot}/oauth/authorize",
        "HSQBO_HUBSPOT_TOKEN_URL": f"{hubspot}/oauth/v1/token", "HSQBO_QBO_BASE_URL": qbo,
        "HSQBO_QBO_AUTHORIZE_URL": f"{qbo}/connect/oauth2", "HSQBO_QBO_TOKEN_URL": f"{qbo}/oauth2/v1/tokens/bearer",
    }  # fmt: skip
    try:
        yield Guide(sandbox, tmp_path / "hsqbo.env", values)
    finally:
        await sandbox.stop()


async def test_going_live_connects_both_halves_and_config_check_names_what_breaks(
    guide: Guide, session_vhost_url: str
) -> None:
    guide.write_env_file(HSQBO_RABBITMQ_URL=session_vhost_url)
    portal_id = guide.sandbox.hubspot.create_portal()
    realm_id = guide.sandbox.qbo.create_realm().realm_id

    # 1. The HubSpot app: `hs project upload` in deploy/hubspot-app declares its webhook subscriptions.
    await guide.control("PUT", "app/webhooks", json.loads(APP_WEBHOOKS.read_text()))

    # 2. Connect HubSpot: the portal id comes from the token answer.
    status, said = await guide.hsqbo("connect", "hubspot", "--name", "acme", answer_consent=True)
    assert status == 0, said
    assert f"acme: HubSpot portal {portal_id} connected" in said
    assert "next: hsqbo connect quickbooks --name acme" in said
    assert "HubSpot webhook subscriptions: every one hsqbo needs is there" in said

    # 3. Connect QuickBooks: the realm id comes from Intuit's redirect; the connection is added to the sync rules.
    status, said = await guide.hsqbo("connect", "quickbooks", "--name", "acme", answer_consent=True)
    assert status == 0, said
    assert f"acme: QuickBooks company {realm_id} connected" in said
    assert "acme added to" in said
    assert "enable Customer (Create, Update, Delete, Merge)" in said
    connection = load_sync_settings(Path(guide.settings["HSQBO_CONFIG"])).named("acme")
    assert connection is not None
    assert (connection.hubspot_portal_id, connection.qbo_realm_id) == (str(portal_id), realm_id)

    # 4. Everything reachable.
    status, said = await guide.hsqbo("config", "check")
    assert status == 0, said
    assert "hsqbo config check: ok" in said
    # A company whose CompanyInfo reports no time zone (as a real one most likely does): its clock's offset, a note.
    guide.sandbox.qbo.realms[realm_id].company.configure({"reports_time_zone": False})
    status, said = await guide.hsqbo("config", "check")
    assert status == 0, said
    assert "note: acme: dates use QuickBooks' clock offset UTC-0" in said  # -08:00 or -07:00 (Los Angeles)
    assert "set qbo_timezone to follow daylight saving exactly" in said
    status, said = await guide.hsqbo("connections", "list")
    assert status == 0, said
    assert f"acme  HubSpot portal {portal_id}: connected  QuickBooks company {realm_id}: connected" in said

    # 5. Someone deletes a webhook subscription in HubSpot's app settings: config check names it.
    subscriptions = await guide.control("GET", "app/webhooks")
    assert isinstance(subscriptions, dict)
    [email] = [s for s in subscriptions["subscriptions"] if s.get("propertyName") == "email"
               and s["objectTypeId"] == "0-1"]  # fmt: skip
    await guide.control("DELETE", f"app/webhooks/{email['id']}")
    status, said = await guide.hsqbo("config", "check")
    assert status == 1, said
    assert "missing HubSpot webhook subscription: contact.propertyChange (email)" in said.splitlines()

    # 6. The QuickBooks admin disconnects the app (revokes the token): config check names it.
    async with open_store(guide.settings["HSQBO_STORE_URL"],
                          encryption_key=Settings(encryption_key=guide.settings["HSQBO_ENCRYPTION_KEY"]).encryption_key
                          ) as store:  # fmt: skip
        credentials = await store.get_credentials("acme", Provider.QUICKBOOKS)
    assert credentials is not None
    guide.sandbox.qbo.tokens.revoke(credentials.refresh_token)
    status, said = await guide.hsqbo("config", "check")
    assert status == 1, said
    revoked = f"acme: QuickBooks token revoked or expired (account {realm_id}): hsqbo connect quickbooks --name acme"
    assert revoked in said.splitlines()
    assert "golive-qbo-secret" not in said
    assert credentials.refresh_token not in said


async def test_a_private_app_token_connects_hubspot_and_a_connection_pauses_and_resumes(guide: Guide) -> None:
    portal_id = guide.sandbox.hubspot.create_portal()
    realm_id = guide.sandbox.qbo.create_realm().realm_id
    token = guide.sandbox.hubspot.private_app_token(portal_id)
    await guide.control("PUT", "app/webhooks", json.loads(APP_WEBHOOKS.read_text()))

    status, said = await guide.hsqbo("connect", "hubspot", "--name", "solo", "--private-app-token", "-",
                                     stdin=token + "\n")  # fmt: skip
    assert status == 0, said
    assert f"solo: HubSpot portal {portal_id} connected" in said
    assert token not in said
    # Off a terminal: the consent URL printed, the redirect passed back as an argument.
    status, consent = await guide.hsqbo("connect", "quickbooks", "--name", "solo", "--print-url")
    assert status == 0, consent
    redirect = await guide.approve(consent.strip())
    status, said = await guide.hsqbo("connect", "quickbooks", "--name", "solo", "--redirect-url", redirect)
    assert status == 0, said
    assert "solo added to" in said
    status, said = await guide.hsqbo("connect", "quickbooks", "--name", "solo", "--redirect-url", redirect)
    assert status == 1, said  # a code is good once

    # Reconnecting picks another company on Intuit's screen: refused, the stored tokens kept.
    other = guide.sandbox.qbo.create_realm().realm_id
    status, said = await guide.hsqbo("connect", "quickbooks", "--name", "solo", answer_consent=True,
                                     consent_extra=f"&realm_id={other}")  # fmt: skip
    assert status == 1, said
    assert f"that is QuickBooks company {other}; solo syncs {realm_id}" in said

    status, said = await guide.hsqbo("connections", "pause", "solo")
    assert status == 0, said
    assert "solo: hubspot paused" in said.splitlines()
    assert "solo: quickbooks paused" in said.splitlines()
    status, said = await guide.hsqbo("connections", "resume", "solo")
    assert status == 0, said
    assert "solo: hubspot connected (private-app token)" in said.splitlines()
    status, said = await guide.hsqbo("connections", "show", "solo")
    assert status == 0, said
    assert f'"hubspot_portal_id": "{portal_id}"' in said
    status, said = await guide.hsqbo("--version")
    assert status == 0, said
    assert said.startswith("hsqbo ")
