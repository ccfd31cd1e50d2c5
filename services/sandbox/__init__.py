"""`hsqbo sandbox`: local emulators of the HubSpot and QuickBooks Online APIs, served in one process, sending real
signed webhooks. `start_sandbox(SandboxOptions(...))` does the same from Python (tests, `hsqbo run`, benchmarks).

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
from pathlib import Path
from typing import Any

from services.sandbox._clock import SandboxClock
from services.sandbox._faults import FaultConfig, FaultMiddleware, Faults
from services.sandbox._oauth import Grant, OAuthError, TokenIssuer, TokenPair
from services.sandbox._recorder import RecordedRequest, RequestLog
from services.sandbox._webhooks import DispatcherStats, Event, WebhookDispatcher
from shared import money
from shared.asgi import AppServer
from shared.config import Settings, load_settings
from shared.logging import get_logger
from shared.process import process_settings, stop_on_signals

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
HUBSPOT_APP_WEBHOOKS = Path(__file__).parents[2] / "deploy/hubspot-app/src/app/webhooks/webhooks-hsmeta.json"


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


async def start_sandbox(options: SandboxOptions | None = None, *, settings: Settings | None = None) -> RunningSandbox:
    """Build both emulators on one clock, load or seed their data, and serve them. Stop with `.stop()`."""
    from services.sandbox.hubspot import HubSpotSandbox
    from services.sandbox.qbo import QboSandbox

    options = options or SandboxOptions()
    settings = settings or load_settings()
    clock = SandboxClock()
    qbo = QboSandbox.from_settings(
        settings,
        clock=clock,
        webhook_url=options.qbo_webhook_url,
        webhook_format=options.qbo_webhook_format,
        retry_scale=options.retry_scale,
    )
    hubspot = HubSpotSandbox.from_settings(settings, clock=clock, webhook_url=options.hubspot_webhook_url,
                                           retry_scale=options.retry_scale)  # fmt: skip
    if options.state_file is not None and options.state_file.exists():
        state = json.loads(options.state_file.read_text())
        qbo.load(state.get("qbo", {}))
        hubspot.load(state.get("hubspot", {}))
    elif options.seed:
        log.info("sandbox seeded", qbo=qbo.seed(), hubspot=hubspot.seed())
        if HUBSPOT_APP_WEBHOOKS.is_file():  # as if `hs project upload` had run in deploy/hubspot-app
            hubspot.subscriptions.upload(json.loads(HUBSPOT_APP_WEBHOOKS.read_text()))
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


def main(args: argparse.Namespace) -> None:
    settings = process_settings()
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
    asyncio.run(_serve(options, settings))


async def _serve(options: SandboxOptions, settings: Settings) -> None:
    running = await start_sandbox(options, settings=settings)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        await running.stop()
