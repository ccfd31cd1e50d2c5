"""Settings: `HSQBO_*` environment variables for secrets and endpoints.

Every command reads them the same way: the process environment first, then the env file named by `HSQBO_ENV_FILE`
(default `./hsqbo.env`, `KEY=value` lines; skipped when the default is absent, an error when a named one is), so
`hsqbo connect`, `hsqbo config check` and the running stack share one file.

One `Settings` object serves every process; each process states which settings it cannot run without
(`Settings.require`), so a missing or invalid one stops it at start with one line naming the variable.
Sync rules (directions, mappings, filters) live in the TOML file named by `HSQBO_CONFIG`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.errors import ConfigError

ENV_PREFIX = "HSQBO_"
ENV_FILE_VARIABLE = "HSQBO_ENV_FILE"
DEFAULT_ENV_FILE = Path("hsqbo.env")

Seconds = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Broker
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    publish_timeout_seconds: Seconds = 2.0  # well inside Intuit's 3 s and HubSpot's 5 s answer deadlines

    # Webhook verification. HubSpot signs with the app's client secret, Intuit with the webhook verifier token.
    hubspot_client_secret: SecretStr | None = None
    hubspot_allow_v1_signatures: bool = False  # legacy apps only: v1 has no timestamp, so no replay protection
    intuit_verifier_token: SecretStr | None = None
    public_url: AnyHttpUrl | None = None  # externally visible base URL, to rebuild the URI HubSpot signed
    signature_max_age_seconds: Seconds = 300.0
    max_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    dedupe_window_seconds: Seconds = 3600.0  # a resend inside this window is answered 200 and not queued again
    dedupe_max_entries: Annotated[int, Field(gt=0)] = 200_000

    # APIs and OAuth endpoints: default to the real hosts; the sandboxes and tests point them at loopback.
    hubspot_base_url: AnyHttpUrl = AnyHttpUrl("https://api.hubapi.com")
    hubspot_authorize_url: AnyHttpUrl = AnyHttpUrl("https://app.hubspot.com/oauth/authorize")
    hubspot_token_url: AnyHttpUrl = AnyHttpUrl("https://api.hubapi.com/oauth/v1/token")
    qbo_base_url: AnyHttpUrl = AnyHttpUrl("https://quickbooks.api.intuit.com")
    qbo_authorize_url: AnyHttpUrl = AnyHttpUrl("https://appcenter.intuit.com/connect/oauth2")
    qbo_token_url: AnyHttpUrl = AnyHttpUrl("https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer")

    # OAuth apps. HubSpot marks writes made with our tokens changeSource=INTEGRATION, sourceId=<app id>.
    hubspot_client_id: str | None = None
    hubspot_app_id: str | None = None
    # Reads the app's webhook subscriptions (webhooks API v3, `hapikey`): `hsqbo config check` and `hsqbo connect`.
    hubspot_developer_api_key: SecretStr | None = None
    qbo_client_id: str | None = None
    qbo_client_secret: SecretStr | None = None
    # Where the providers send the operator back after consent (`hsqbo connect`; the status page uses its own URL).
    oauth_redirect_base_url: AnyHttpUrl = AnyHttpUrl("http://localhost:8081")

    # Outgoing API calls (shared/clients). QBO times requests out at 120 s server-side; we give up well before.
    api_timeout_seconds: Seconds = 30.0
    api_connect_timeout_seconds: Seconds = 10.0
    api_max_connections: Annotated[int, Field(gt=0)] = 100
    oauth_refresh_margin_seconds: Seconds = 300.0  # refresh an access token this long before it expires

    # Client-side rate limits, shared by every process on one store: stay under the providers' throttles.
    api_rate_limits: bool = True  # off only to watch the providers' own throttling
    qbo_requests_per_minute: Count = 500  # per realm (Intuit: 500/min)
    qbo_requests_per_second: Count = 10  # per realm and app (Intuit's limits page; the stricter of its two rules)
    qbo_max_in_flight: Count = 10  # concurrent requests per realm (Intuit: 10)
    qbo_batch_per_minute: Count = 40  # batch requests per realm and app (Intuit: 40/min)
    hubspot_burst_requests: Count = 100  # per portal and burst window: private app 100 (Starter), 190 (Pro), OAuth 110
    hubspot_burst_seconds: Seconds = 10.0  # HubSpot's TEN_SECONDLY_ROLLING window
    hubspot_search_per_second: Count = 5  # CRM search requests per portal (HubSpot: 5/s)
    rate_limit_poll_seconds: Seconds = 0.05  # how soon a call waiting for another process's in-flight slot looks again
    paused_recheck_seconds: Seconds = 300.0  # a record of a paused (revoked) connection is looked at again this often

    # Worker: a burst of events for one record becomes one apply after this quiet window (bounded by the max wait).
    # A change to a record with no link yet waits this long before its first apply: when it is the echo of a record
    # hsqbo is creating from the other side, that apply has recorded the link by then (until echoes are recognised
    # from the write's answer). Changes to linked records are applied at once.
    unlinked_settle_seconds: Seconds = 1.0
    lease_seconds: Seconds = 120.0  # how long one worker owns a record it is syncing before another may take over
    # Unacknowledged messages per queue: the applies in flight, which are what a batch call gathers
    # (shared/clients/_batching.py). At 32 a burst's QBO /batch calls went part-filled and their window of 40 a minute
    # bound (bench: 708 new records a minute into QBO, 2,117 into HubSpot; 894 and 4,685 at 128). At 256, 2,000 new
    # QBO customers reached HubSpot at 6,104 a minute (5,074 at 128).
    worker_prefetch: Annotated[int, Field(gt=0)] = 256
    # The same for the bulk lane's queues (a backfill, the poller's catch-up): fewer, so a backfill's applies leave the
    # event loop and the store to live edits (bench, 10,000 records: a live edit during it p95 1,235 ms at 256, 715 ms
    # at 128; the backfill ran at 2,193 and 1,937 records a minute).
    worker_bulk_prefetch: Annotated[int, Field(gt=0)] = 128
    max_attempts: Annotated[int, Field(gt=0)] = 8  # then the change is dead-lettered with its history
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0)  # backoff tiers, one queue each
    sweep_seconds: Seconds = 15.0  # how often a worker re-schedules pending work whose message was lost
    # Dead-letter guard: when more than this share of the last `dlq_min_sample` finished applies were dead-lettered,
    # the deploy (not the data) is broken: the worker stops consuming instead of dead-lettering everything.
    dlq_max_ratio: Annotated[float, Field(gt=0, le=1)] = 0.5
    dlq_min_sample: Annotated[int, Field(gt=0)] = 50
    shutdown_seconds: Seconds = 20.0  # on SIGTERM, how long in-flight applies may finish before they are requeued

    # Poller: the fallback for missed webhooks (QBO CDC, HubSpot search), one connection at a time per store.
    poll_seconds: Seconds = 60.0  # how often each connection is polled (QBO's CDC: by its read budget, below)
    # A connection's QBO CDC polls come as often as its monthly read budget allows (shared/budget.py), within these.
    qbo_cdc_min_seconds: Seconds = 5.0
    qbo_cdc_max_seconds: Seconds = 900.0
    # Each poll looks this far behind the previous one: HubSpot's search index lags its writes, clocks differ.
    poll_overlap_seconds: Seconds = 120.0
    # A change a poll finds unsynced with no trace of its webhook (no pending work, its link untouched since) waits
    # this long for it, left to the next poll; then it is queued and counted a missed webhook. Kept under the overlap.
    missed_webhook_grace_seconds: Annotated[float, Field(ge=0)] = 30.0
    # How often linked HubSpot records are read back to find deletions whose webhook was lost (search cannot).
    reconcile_seconds: Seconds = 86400.0

    # The status page (`hsqbo status`): HTTP Basic password, user "hsqbo"; required unless it listens on loopback.
    status_password: SecretStr | None = None
    # Host names the page answers to besides loopback's, IP addresses and HSQBO_OAUTH_REDIRECT_BASE_URL's host: any
    # other Host is refused (DNS rebinding). Comma-separated; "*.example.com" matches its subdomains, "*" any name.
    status_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Addresses (IPs or CIDR networks) of the TLS proxies whose X-Forwarded-Proto and X-Forwarded-For the receiver
    # and the status page believe; comma-separated, "*" for any. Unset: none, the connection is what it is.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

    # Sync rules file (TOML).
    config: Path | None = None

    # Store: id map, pending work, activity, credentials. A relative sqlite path resolves against the working dir.
    store_url: str = "sqlite:///var/hsqbo.db"
    encryption_key: SecretStr | None = None  # Fernet key (urlsafe base64 of 32 bytes) for OAuth tokens at rest
    # Each record's activity (the status page's history) is kept this long, and at most this many lines in all (the
    # oldest go first); the workers prune it every `activity_prune_seconds`.
    activity_retention_days: Annotated[float, Field(gt=0)] = 30.0
    activity_max_lines: Count = 500_000
    activity_prune_seconds: Seconds = 600.0

    log_level: str = "INFO"
    # A process's own /metrics, /healthz and /readyz: the receiver's on 9100 when unset, a worker's and a poller's off.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    metrics_host: str = "127.0.0.1"

    @field_validator("status_allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of `names` that is unset."""
        for name in names:
            if getattr(self, name) in (None, ""):
                raise ConfigError(f"{ENV_PREFIX}{name.upper()} is required but not set")


def env_file() -> Path | None:
    """The env file every command reads after the environment: `HSQBO_ENV_FILE`, else `./hsqbo.env` if present."""
    named = os.environ.get(ENV_FILE_VARIABLE)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{ENV_FILE_VARIABLE}: no such file {path}")
        return path
    return DEFAULT_ENV_FILE if DEFAULT_ENV_FILE.is_file() else None


def load_settings() -> Settings:
    """Read the environment and the env file; turn pydantic's report into one line naming the variable."""
    path = env_file()
    try:
        return Settings(_env_file=path)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ENV_PREFIX + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name} is invalid: {first['msg']}") from None


def secret(value: SecretStr | None) -> str:
    """The plain value of a required secret (after `Settings.require`)."""
    if value is None:
        raise ConfigError("a required secret is not set")
    return value.get_secret_value()
