"""`hsqbo poller --backfill --plan FILE`, then `--apply FILE`, as an operator runs them: the plan is written and
nothing is written to either account; decisions made in the file are what the workers apply."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import CONNECTION, Stack
from tests.integration.test_worker_crash import worker_environment

pytestmark = pytest.mark.integration


async def hsqbo(stack: Stack, tmp_path: Path, *argv: str) -> str:
    command = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *argv, env=worker_environment(stack, tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(command.communicate(), 60)
    assert command.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_a_first_sync_planned_to_a_file_writes_nothing_until_applied_with_its_decisions(
    stack: Stack, tmp_path: Path
) -> None:
    for sandbox in (stack.sandbox.hubspot, stack.sandbox.qbo):  # records that were there before hsqbo
        sandbox.faults.update(webhook_drop_rate=1.0)
    twins = [
        stack.qbo_edit(
            "Customer", "create", {"DisplayName": f"Twin {n}", "PrimaryEmailAddr": {"Address": "twin@x.com"}}
        )
        for n in (1, 2)
    ]
    old = stack.qbo_edit(
        "Customer", "create", {"DisplayName": "Old", "PrimaryEmailAddr": {"Address": "old@example.com"}}
    )
    contact = stack.hubspot_edit("contacts", "create", properties={"email": "old@example.com", "firstname": "Old"})
    plan_file = tmp_path / "plan.json"

    out = await hsqbo(stack, tmp_path, "poller", "--backfill", "--plan", str(plan_file), "--connection", CONNECTION)
    assert "nothing was written to either account" in out
    assert "2 record(s) need a decision" in out
    assert stack.api_writes() == {"hubspot": 0, "quickbooks": 0}
    plan = orjson.loads(plan_file.read_bytes())
    actions = {(e["side"], e["id"]): e["action"] for e in plan["entries"]}
    assert actions == {
        ("hubspot", contact["id"]): "link",  # the customer's own entry is the same pair
        ("quickbooks", twins[0]["Id"]): "review",
        ("quickbooks", twins[1]["Id"]): "review",
    }
    [linked] = [e for e in plan["entries"] if e["action"] == "link"]
    assert linked["matched"]["id"] == old["Id"]

    for entry in plan["entries"]:  # the operator decides in the file
        if entry["id"] in (twins[0]["Id"], twins[1]["Id"]):
            entry["decision"] = "create_new" if entry["id"] == twins[0]["Id"] else "exclude"
    plan_file.write_bytes(orjson.dumps(plan))
    out = await hsqbo(stack, tmp_path, "poller", "--backfill", "--apply", str(plan_file))
    assert f"connection {CONNECTION}: 3 record(s) queued for the workers" in out
    assert "3/3 records synced" in out
    await stack.settle()
    assert sorted(c["email"] for c in stack.hubspot_records("contacts")) == ["old@example.com", "twin@x.com"]
    assert len(stack.qbo_entities("Customer")) == 3  # linked, not duplicated
