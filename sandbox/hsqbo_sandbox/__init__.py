"""`hsqbo-sandbox`: local emulators of the HubSpot and QuickBooks Online APIs, served in one process, sending real
signed webhooks. `start_sandbox(SandboxOptions(...))` does the same from Python (tests, `hsqbo run`, benchmarks).

A distribution of its own (`sandbox/pyproject.toml`, `pip install ./sandbox`), never part of hsqbo's package or image:
it is configured by its command line and its own `HSQBO_SANDBOX_*` variables (`_options.py`) and reads none of
hsqbo's settings.

Shared pieces both emulators are built from: SandboxClock (one clock for both), Faults/FaultConfig, RequestLog,
TokenIssuer, WebhookDispatcher and the control routes they share (`_control.py`). Each emulator (`QboSandbox`,
`HubSpotSandbox`) is a class with `.app` (its API on the real paths plus a `/_sandbox/` control surface: the shared
routes and its own), `seed()`, `dump()` and `load()`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hsqbo_sandbox._clock import SandboxClock
from hsqbo_sandbox._faults import FaultConfig, FaultMiddleware, Faults
from hsqbo_sandbox._oauth import Grant, OAuthError, TokenIssuer, TokenPair
from hsqbo_sandbox._options import SandboxApps, log_level
from hsqbo_sandbox._recorder import RecordedRequest, RequestLog
from hsqbo_sandbox._webhooks import DispatcherStats, Event, WebhookDispatcher
from shared import money
from shared.asgi import AppServer
from shared.logging import configure_logging, get_logger

__all__ = [
    "DispatcherStats",
    "Event",
    "FaultConfig",
    "FaultMiddleware",
    "Faults",
    "Grant",
    "OAuthError",
    "RecordedRequest",
    "RequestLog",
    "RunningSandbox",
    "SandboxApps",
    "SandboxClock",
    "SandboxOptions",
    "TokenIssuer",
    "TokenPair",
    "WebhookDispatcher",
    "configure_parser",
    "main",
    "start_sandbox",
]

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    hubspot_port: int = 8091
    qbo_port: int = 8092  # 0 = any free port (tests)
    hubspot_webhook_url: str | None = None
    qbo_webhook_url: str | None = None
    qbo_webhook_format: str = "cloudevents"
    state_file: Path | None = None  # loaded at start when it exists, written at stop
    seed: bool = False
    retry_scale: float = 1.0  # multiplies every webhook retry delay
    apps: SandboxApps = dataclasses.field(default_factory=SandboxApps.from_env)
    # Every API call answers after latency_ms ± latency_jitter_ms (uniform): a real provider's round trip, for
    # benchmarks (`make bench`: 120 ± 40). 0 answers at once. Tests and the control surface change it at run time
    # (`PUT /_sandbox/faults`, `latency_ms: [min, max]`).
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.latency_jitter_ms <= self.latency_ms:
            raise ValueError("the latency jitter must be between 0 and the latency")


@dataclasses.dataclass(slots=True)
class RunningSandbox:
    options: SandboxOptions
    clock: SandboxClock
    qbo: Any  # QboSandbox (typed loosely so importing this package never loads the emulators)
    hubspot: Any  # HubSpotSandbox
    qbo_server: AppServer
    hubspot_server: AppServer

    def save_state(self) -> None:
        if self.options.state_file is not None:
            state = {"qbo": self.qbo.dump(), "hubspot": self.hubspot.dump()}
            self.options.state_file.write_bytes(money.dumps(state))  # amounts are Decimals

    async def stop(self) -> None:
        self.save_state()
        await self.qbo_server.stop()
        await self.hubspot_server.stop()


async def start_sandbox(options: SandboxOptions | None = None) -> RunningSandbox:
    """Build both emulators on one clock, load or seed their data, and serve them. Stop with `.stop()`."""
    from hsqbo_sandbox.hubspot import HubSpotSandbox
    from hsqbo_sandbox.hubspot._auth import HUBSPOT_PROJECT
    from hsqbo_sandbox.qbo import QboSandbox

    options = options or SandboxOptions()
    apps = options.apps
    clock = SandboxClock()
    qbo = QboSandbox(
        clock=clock,
        client_id=apps.qbo_client_id,
        client_secret=apps.qbo_client_secret,
        verifier_token=apps.intuit_verifier_token,
        webhook_url=options.qbo_webhook_url,
        webhook_format=options.qbo_webhook_format,
        retry_scale=options.retry_scale,
    )
    hubspot = HubSpotSandbox(
        clock=clock,
        client_id=apps.hubspot_client_id,
        client_secret=apps.hubspot_client_secret,
        app_id=apps.hubspot_app_id,
        developer_api_key=apps.hubspot_developer_api_key,
        webhook_url=options.hubspot_webhook_url,
        retry_scale=options.retry_scale,
    )
    if options.state_file is not None and options.state_file.exists():
        state = json.loads(options.state_file.read_text())
        qbo.load(state.get("qbo", {}))
        hubspot.load(state.get("hubspot", {}))
    elif options.seed:
        log.info("sandbox seeded", qbo=qbo.seed(), hubspot=hubspot.seed())
        webhooks = HUBSPOT_PROJECT / "src" / "app" / "webhooks" / "webhooks-hsmeta.json"
        if webhooks.is_file():  # as if `hs project upload` had run in deploy/hubspot-app
            hubspot.subscriptions.upload(json.loads(webhooks.read_text()))
    if options.latency_ms:
        answer_within = (options.latency_ms - options.latency_jitter_ms, options.latency_ms + options.latency_jitter_ms)
        for emulator in (qbo, hubspot):
            emulator.faults.update(latency_ms=answer_within)
    qbo_server = AppServer(qbo.app, host=options.host, port=options.qbo_port)
    hubspot_server = AppServer(hubspot.app, host=options.host, port=options.hubspot_port)
    await qbo_server.start()
    try:
        await hubspot_server.start()
    except BaseException:
        await qbo_server.stop()
        raise
    log.info("sandbox serving", qbo=qbo_server.url, hubspot=hubspot_server.url)
    return RunningSandbox(options, clock, qbo, hubspot, qbo_server, hubspot_server)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    defaults = SandboxOptions()
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--hubspot-port", type=int, default=defaults.hubspot_port)
    parser.add_argument("--qbo-port", type=int, default=defaults.qbo_port)
    parser.add_argument("--hubspot-webhook-url", help="where HubSpot webhooks are delivered (none: not sent)")
    parser.add_argument("--qbo-webhook-url", help="where QuickBooks Online webhooks are delivered (none: not sent)")
    parser.add_argument("--qbo-webhook-format", choices=("cloudevents", "classic"), default=defaults.qbo_webhook_format)
    parser.add_argument("--state-file", type=Path, help="JSON file: loaded at start if present, written at exit")
    parser.add_argument("--seed", action="store_true", help="create demo data in a new portal and a new realm")
    parser.add_argument("--retry-scale", type=float, default=defaults.retry_scale,
                        help="multiplies every webhook retry delay (1.0 = the providers' real schedules)")  # fmt: skip
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=defaults.latency_ms,
        help="every API call answers after this many milliseconds (a real round trip; e.g. 120)",
    )
    parser.add_argument("--latency-jitter-ms", type=float, default=defaults.latency_jitter_ms,
                        help="... give or take up to this many, uniformly (e.g. 40)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """The `hsqbo-sandbox` console script (also `python -m hsqbo_sandbox`): serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="hsqbo-sandbox", description=__doc__.split("\n\n")[0])
    configure_parser(parser)
    args = parser.parse_args(argv)
    configure_logging(log_level())
    options = SandboxOptions(
        host=args.host,
        hubspot_port=args.hubspot_port,
        qbo_port=args.qbo_port,
        hubspot_webhook_url=args.hubspot_webhook_url,
        qbo_webhook_url=args.qbo_webhook_url,
        qbo_webhook_format=args.qbo_webhook_format,
        state_file=args.state_file,
        seed=args.seed,
        retry_scale=args.retry_scale,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
    )
    try:
        asyncio.run(_serve(options))
    except KeyboardInterrupt:
        return 130
    return 0


async def _serve(options: SandboxOptions) -> None:
    running = await start_sandbox(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
