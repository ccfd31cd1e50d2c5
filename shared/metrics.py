"""The one registry of every metric hsqbo exports. Each metric is defined here, once, with one comment saying what it
counts; code imports the object. Names are `hsqbo_<area>_<what>[_unit]`, labels are low-cardinality (never ids)."""

from __future__ import annotations

import platform

from prometheus_client import Counter, Gauge, Histogram

from shared.health import serve_metrics as serve_metrics  # the processes' metrics server, /healthz and /readyz
from shared.version import version

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# An apply reads and writes both sides through rate-limited APIs: a throttled one waits for its quota, so it can take
# minutes, not milliseconds.
_APPLY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

# From a change on one side to its write on the other: the debounce's quiet time (seconds), retries (minutes), a
# missed webhook caught by the poller (minutes) or a paused connection (hours).
_LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)

# --- every process ---------------------------------------------------------------------------------------------------


# Always 1; its labels say which hsqbo (package version) on which Python this process runs.
BUILD_INFO = Gauge("hsqbo_build_info", "The running hsqbo's version", ["version", "python"])
BUILD_INFO.labels(version(), platform.python_version()).set(1)

# --- receiver -------------------------------------------------------------------------------------------------------

# Webhook requests answered, by provider and outcome (accepted, duplicate, bad_signature, malformed, too_large,
# unsupported_media_type, unavailable).
WEBHOOK_REQUESTS = Counter("hsqbo_webhook_requests_total", "Webhook requests answered", ["provider", "outcome"])

# Time from the first byte of a webhook request to its answer, by provider.
WEBHOOK_LATENCY = Histogram(
    "hsqbo_webhook_request_seconds", "Webhook request latency", ["provider"], buckets=_LATENCY_BUCKETS
)

# Signatures refused, by provider and reason (missing, stale, mismatch).
SIGNATURE_FAILURES = Counter(
    "hsqbo_webhook_signature_failures_total", "Webhook signatures refused", ["provider", "reason"]
)

# Change events durably queued (publisher-confirmed), by provider and object type.
EVENTS_PUBLISHED = Counter(
    "hsqbo_events_published_total", "Change events confirmed by RabbitMQ", ["provider", "object_type"]
)

# Events answered 200 without queueing because the same event was queued inside the dedupe window.
EVENTS_DEDUPLICATED = Counter("hsqbo_events_deduplicated_total", "Redelivered events not queued again", ["provider"])

# Events of a type hsqbo does not sync (e.g. conversation.*), acknowledged and dropped, by provider and type.
EVENTS_IGNORED = Counter(
    "hsqbo_events_ignored_total", "Webhook events acknowledged but not queued", ["provider", "event_type"]
)

# Time from publishing one message to RabbitMQ's confirm.
PUBLISH_CONFIRM_LATENCY = Histogram(
    "hsqbo_publish_confirm_seconds", "Publish-to-confirm latency", buckets=_LATENCY_BUCKETS
)

# --- API clients (shared/clients) -----------------------------------------------------------------------------------

_API_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# HTTP calls to HubSpot and QBO (token endpoints included), by provider, operation (read, create, query, search,
# oauth_token...) and outcome (ok, or the ApiError kind: rate_limited, not_found, transport_error...).
API_REQUESTS = Counter("hsqbo_api_requests_total", "Provider API calls", ["provider", "operation", "outcome"])

# Time from sending one provider API call to its complete answer, by provider and operation.
API_LATENCY = Histogram(
    "hsqbo_api_request_seconds", "Provider API call latency", ["provider", "operation"], buckets=_API_LATENCY_BUCKETS
)

# Provider API calls this calendar month (UTC), by connection, provider and kind (read, write): the store's count of
# every process's calls, as this process last added its own (shared/clients/_usage.py). QBO reads are Intuit's
# metered CorePlus calls.
API_CALLS_THIS_MONTH = Gauge(
    "hsqbo_api_calls_this_month", "Provider API calls this month (UTC)", ["connection", "provider", "kind"]
)

# A connection's monthly budget of QBO reads (`qbo_monthly_read_budget` in the sync rules): the alert compares
# hsqbo_api_calls_this_month{provider="quickbooks",kind="read"} with it.
QBO_READ_BUDGET = Gauge("hsqbo_qbo_read_budget", "Monthly budget of QBO reads (CorePlus calls)", ["connection"])

# 1 while a connection's QBO reads this month are near their budget: its records are read by batched CDC instead of
# one read each, and its poller polls QBO seldom (shared/budget.py); else 0.
QBO_READS_DEGRADED = Gauge("hsqbo_qbo_reads_degraded", "QBO reads near the monthly budget", ["connection"])

# 1 while a connection is paused because its provider refused our refresh token (revoked or expired): the account
# must be reconnected; 0 once it works again. By connection name and provider.
CONNECTION_PAUSED = Gauge("hsqbo_connection_paused", "Connection paused until reconnected", ["connection", "provider"])

# --- worker ---------------------------------------------------------------------------------------------------------

# Change envelopes consumed, by what became of them (scheduled, coalesced, dropped, unparseable).
CHANGES_CONSUMED = Counter("hsqbo_worker_changes_total", "Change envelopes consumed by the worker", ["outcome"])

# Records applied, by kind and outcome action (created, updated, linked, unchanged, echo, excluded, failing...).
APPLIES = Counter("hsqbo_worker_applies_total", "Records brought up to date", ["kind", "action"])

# Time to apply one record (API calls included), by kind.
APPLY_LATENCY = Histogram("hsqbo_worker_apply_seconds", "Apply latency per record", ["kind"], buckets=_APPLY_BUCKETS)

# From a record's change on its source side (the webhook's occurredAt, HubSpot's hs_lastmodifieddate or QBO's
# LastUpdatedTime as the poller found it) to the worker's write of it on the other side, by kind and source side.
# Of several changes synced by one write (debounced together) the oldest counts: the longest anyone waited. A repair
# the reconciliation queued counts from when it found the drift; a backfill's records (a first sync) are not counted.
SYNC_LAG = Histogram(
    "hsqbo_sync_lag_seconds", "Source change to the write on the other side", ["kind", "source"], buckets=_LAG_BUCKETS
)

# Applies that failed transiently and were scheduled again, by the tier's delay.
RETRIES = Counter("hsqbo_worker_retries_total", "Applies scheduled for a retry", ["delay"])

# Applies dead-lettered after their last attempt.
DEAD_LETTERED = Counter("hsqbo_worker_dead_lettered_total", "Applies dead-lettered after exhausting their attempts")

# 1 while the worker has stopped consuming because too many applies were dead-lettered (the guard), else 0.
WORKER_HALTED = Gauge("hsqbo_worker_halted", "Worker stopped consuming by the dead-letter guard")

# Records waiting to be synced or being synced now (the store's pending work, shared by every worker), as each
# worker's sweep last counted it: a backlog that only grows means the workers cannot keep up.
BACKLOG = Gauge("hsqbo_worker_backlog", "Records waiting to be synced")

# Records by link status (failing, excluded, needs_review...) per connection and kind (contact, product, invoice,
# payment), as a worker's sweep last counted them in the store: records that need a person, not a retry.
LINKS = Gauge("hsqbo_links", "Linked records by status", ["connection", "object", "status"])

# In-flight messages still running at the shutdown deadline, cancelled and left to the broker to redeliver.
SHUTDOWN_REQUEUED = Counter("hsqbo_worker_shutdown_requeued_total", "In-flight messages requeued at shutdown")

# --- poller ---------------------------------------------------------------------------------------------------------

# Polls of one provider for one connection, by provider and outcome (ok, failed: an API or broker error, retried
# next time from the same cursor; paused: the connection must be reconnected).
POLLS = Counter("hsqbo_poller_polls_total", "Polls of a provider for changes", ["provider", "outcome"])

# Changed records the poller found, by provider and outcome: queued (the link does not show this version synced: a
# webhook was missed or not processed yet) or in_sync (the link already shows this version).
POLLED_CHANGES = Counter("hsqbo_poller_changes_total", "Changed records found by polling", ["provider", "outcome"])

# Changes the poller found that no webhook brought: not synced, older than the grace a webhook gets to arrive
# (HSQBO_MISSED_WEBHOOK_GRACE_SECONDS), no pending work for the record and its link untouched since the change. A
# change its webhook brought but whose sync failed is not counted (the worker touched its link), nor one still in
# the queue (pending). By connection and provider.
WEBHOOKS_MISSED = Counter(
    "hsqbo_poller_webhooks_missed_total", "Polled changes whose webhook never came", ["connection", "provider"]
)

# Seconds between a connection's QBO change-data-capture polls, as the poller last chose them from its read budget
# (shared/budget.py): seconds while reads are to spare, longer near the budget.
POLL_QBO_INTERVAL = Gauge(
    "hsqbo_poller_qbo_interval_seconds", "Seconds between QBO CDC polls, from the read budget", ["connection"]
)

# Unix time up to which a provider's changes are known to be queued, by connection and provider: now minus this is
# how far the fallback is behind.
POLL_WATERMARK = Gauge(
    "hsqbo_poller_watermark_seconds", "Time up to which changes are queued", ["connection", "provider"]
)

# Records the last reconciliation of a connection found apart, by connection and object (contact, product, invoice,
# payment): drifted (a mapped value or total differs between HubSpot and QBO) plus missing (a side gone while linked).
# They were queued again when it ran; a record still apart at the next run did not repair (see its status).
RECONCILE_DRIFT = Gauge(
    "hsqbo_reconcile_drift_records", "Records found apart by the last reconciliation", ["connection", "object"]
)

# --- dead letters (shared/deadletters) ------------------------------------------------------------------------------

# Dead letters replayed by an operator, by payload (apply, change).
DEAD_LETTERS_REPLAYED = Counter("hsqbo_dead_letters_replayed_total", "Dead letters replayed", ["payload"])

# Dead letters purged by an operator.
DEAD_LETTERS_PURGED = Counter("hsqbo_dead_letters_purged_total", "Dead letters purged")
