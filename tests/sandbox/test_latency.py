"""The sandboxes answer at a realistic latency when asked (`make bench`: 120 ± 40 ms per API call)."""

from __future__ import annotations

import pytest

from hsqbo_sandbox import SandboxApps, SandboxOptions, start_sandbox


async def test_a_latency_setting_makes_every_api_call_of_both_emulators_wait_within_its_range() -> None:
    sandbox = await start_sandbox(
        SandboxOptions(hubspot_port=0, qbo_port=0, latency_ms=120, latency_jitter_ms=40, apps=SandboxApps())
    )
    try:
        for emulator in (sandbox.qbo, sandbox.hubspot):
            assert emulator.faults.config.latency_ms == (80.0, 160.0)
            waits = [emulator.faults.latency_seconds() for _ in range(200)]
            assert all(0.08 <= wait <= 0.16 for wait in waits)
            assert max(waits) - min(waits) > 0.04  # spread over the range, not one fixed delay
    finally:
        await sandbox.stop()


def test_a_jitter_larger_than_the_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        SandboxOptions(latency_ms=20, latency_jitter_ms=40)
