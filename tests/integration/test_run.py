"""`hsqbo run`: the stack it starts (seeded sandboxes, receiver, worker, the demo connection) syncs a user's edit
each way, its demo traffic is edits the sandboxes accept, and the command parses its options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hsqbo_sandbox.hubspot._schema import BY_NAME
from services.cli import main as cli
from services.run import DemoTraffic, RunningStack, StackOptions, run_connection, running_stack
from shared.bus import APPLY_QUEUE, CHANGES_QUEUE, DEAD_QUEUE
from shared.config import Settings
from tests.conftest import Broker
from tests.integration.conftest import eventually


@pytest.fixture
async def running(broker: Broker, tmp_path: Path) -> AsyncIterator[RunningStack]:
    settings = Settings(
        rabbitmq_url=broker.url,
        store_url=f"sqlite:///{tmp_path / 'store.db'}",
        debounce_quiet_seconds=0.2,
        sweep_seconds=2.0,
        retry_delays=(0.2, 0.5, 1.0),
    )
    options = StackOptions(port=0, hubspot_port=0, qbo_port=0, status_port=0, retry_scale=0.001)
    async with running_stack(settings, options, run_connection) as stack:
        yield stack
    await broker.purge(CHANGES_QUEUE, APPLY_QUEUE, DEAD_QUEUE)


def qbo_customer(stack: RunningStack, email: str) -> dict[str, Any] | None:
    records = stack.sandbox.qbo.realms[stack.realm_id].records["Customer"].values()
    return next((r.data for r in records if (r.data.get("PrimaryEmailAddr") or {}).get("Address") == email), None)


def hubspot_contact(stack: RunningStack, email: str) -> dict[str, str] | None:
    portal = stack.sandbox.hubspot.accounts.get(stack.portal_id).portal
    records = portal.live(BY_NAME["contacts"]).values()
    return next((dict(r.properties) for r in records if r.properties.get("email") == email), None)


@pytest.mark.integration
async def test_run_stack_syncs_a_hubspot_edit_to_qbo_and_a_qbo_edit_to_hubspot(running: RunningStack) -> None:
    running.sandbox.hubspot.user_edit(portal_id=running.portal_id, object_type="contacts", action="create",
                                      properties={"email": "newcomer@example.com", "firstname": "New",
                                                  "lastname": "Comer", "phone": "+1 555 0100"})  # fmt: skip
    customer = await eventually(lambda: qbo_customer(running, "newcomer@example.com"), within=30.0)
    assert customer is not None
    assert (customer["GivenName"], customer["PrimaryPhone"]["FreeFormNumber"]) == ("New", "+1 555 0100")

    seeded = running.sandbox.qbo.realms[running.realm_id].records["Customer"]["7"].data
    email = seeded["PrimaryEmailAddr"]["Address"]
    running.sandbox.qbo.user_edit(running.realm_id, "Customer", "update",
                                  {"Id": "7", "PrimaryPhone": {"FreeFormNumber": "+1 555 0199"}})  # fmt: skip
    await eventually(lambda: (hubspot_contact(running, email) or {}).get("phone") == "+1 555 0199", within=30.0)


@pytest.mark.integration
async def test_run_serves_the_status_page_of_its_connection(running: RunningStack) -> None:
    async with aiohttp.ClientSession() as session, session.get(running.status.url) as response:
        page = await response.text()
    assert response.status == 200
    assert f'data-connection="{running.connection.name}"' in page


@pytest.mark.integration
async def test_every_demo_edit_is_one_the_sandboxes_accept(running: RunningStack) -> None:
    demo = DemoTraffic(running.sandbox, running.portal_id, running.realm_id, seed=1)
    edits = [demo.step() for _ in range(6)]
    assert [edit.edit for edit in edits] == [
        "contact created", "customer phone changed", "item created", "contact phone changed", "invoice created",
        "payment received",
    ]  # fmt: skip
    await eventually(lambda: qbo_customer(running, edits[0].label), within=30.0)


def test_hsqbo_run_help_lists_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(["run", "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    for option in ("--host", "--port", "--hubspot-port", "--qbo-port", "--no-demo", "--demo-interval", "--state-file"):
        assert option in usage
