"""Receiver throughput and latency against a bare Starlette endpoint, measured in the same run (issue 2).

The receiver (`hsqbo receiver`, default settings and log level, fresh secrets) checks every signature and answers
only once RabbitMQ has confirmed every event of the request; the bare endpoint (`_bare_endpoint.py`, the same
uvicorn options) reads the body and answers 200. Both get the same pre-signed requests from a closed loop of
`CONNECTIONS` connections: 2 s of warm-up, then 10 s measured, `ROUNDS` times per case with the two servers taking
turns (bare, receiver, bare, receiver...). Each server's figures are those of its median round by requests/s, and the
ratio is taken between medians: identical code measured 3,566-4,964 requests/s within one hour on this shared
machine, so one run is one sample of a wide spread. Every event is distinct (new ids and `occurredAt`), so the
receiver's dedupe window never short-circuits a publish; the bare endpoint replays the same pool (it does not look at
the bytes). Requests are signed just before each run: v3 signatures are valid 5 minutes.

Cases: HubSpot batches of 1 and of 20 events (v3 signatures), and one Intuit CloudEvents event per request
(`intuit-signature`). The `hsqbo.changes` queue is purged before and after.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import secrets
import time
from collections.abc import Iterator
from typing import Any

import aio_pika
import aiohttp
import orjson

from benchmarks._latest import update_latest
from benchmarks._load import Call, LoadResult, closed_loop, run_load
from benchmarks._processes import free_ports, hsqbo, python_module, rss_kib, running
from benchmarks._report import BenchmarkResult
from shared import signatures
from shared.broker import CHANGES_QUEUE, declare_topology
from shared.config import Settings

CONNECTIONS = 32
WARMUP_SECONDS = 2.0
DURATION_SECONDS = 10.0
ROUNDS = 3
# Requests presigned per second of a case's run: above the fastest rate seen (the bare endpoint replays the pool, so
# only the receiver can run out, and the closed loop then fails loudly); deliveries of 20 carry 20 events each, so
# fewer of them: up to 4,500 a second (a round of the 00:54 UTC run ran out of 8,000 requests or of 3,000 deliveries
# a second, whichever it was).
POOL_EVENTS_PER_SECOND = 90_000
POOL_MAX_REQUESTS_PER_SECOND = 12_000
PORTAL_ID = 2001
REALM_ID = "9130350000000001"
HUBSPOT_APP_ID = 424242
# Event types the receiver queues (none ignored, so every event costs a publish).
HUBSPOT_EVENT_TYPES = (
    {"subscriptionType": "contact.propertyChange", "propertyName": "email", "propertyValue": "ada@example.com"},
    {"subscriptionType": "company.creation", "changeFlag": "CREATED"},
    {
        "subscriptionType": "object.propertyChange",
        "objectTypeId": "0-53",
        "propertyName": "hs_invoice_status",
        "propertyValue": "paid",
    },
)
QBO_ENTITIES = ("customer", "invoice", "payment", "item")


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    provider: str  # "hubspot" | "intuit"
    events_per_request: int

    @property
    def name(self) -> str:
        return f"{self.provider} x{self.events_per_request}"

    @property
    def path(self) -> str:
        return f"/webhooks/{self.provider}"


CASES = (Case("hubspot", 1), Case("hubspot", 20), Case("intuit", 1))


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookSecrets:
    hubspot_client_secret: str
    intuit_verifier_token: str

    @classmethod
    def generate(cls) -> WebhookSecrets:
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32))

    def environment(self) -> dict[str, str]:
        return {
            "HSQBO_HUBSPOT_CLIENT_SECRET": self.hubspot_client_secret,
            "HSQBO_INTUIT_VERIFIER_TOKEN": self.intuit_verifier_token,
        }


def hubspot_events(first_number: int, count: int, *, now_ms: int) -> list[dict[str, Any]]:
    """`count` distinct HubSpot events shaped like real deliveries (numbers make ids and times unique)."""
    return [
        {
            "eventId": number,
            "subscriptionId": 7000 + number % len(HUBSPOT_EVENT_TYPES),
            "portalId": PORTAL_ID,
            "appId": HUBSPOT_APP_ID,
            "occurredAt": now_ms - number,
            "attemptNumber": 0,
            "objectId": 100_000 + number,
            "changeSource": "CRM_UI",
            "sourceId": "userId:1",
            **HUBSPOT_EVENT_TYPES[number % len(HUBSPOT_EVENT_TYPES)],
        }
        for number in range(first_number, first_number + count)
    ]


def intuit_cloudevents(first_number: int, count: int, *, now: float) -> list[dict[str, Any]]:
    """`count` distinct QBO CloudEvents as the sandbox (and Intuit) send them."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return [
        {
            "specversion": "1.0",
            "id": f"bench-{number}",
            "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
            "type": f"qbo.{QBO_ENTITIES[number % len(QBO_ENTITIES)]}.updated.v1",
            "datacontenttype": "application/json",
            "time": when,
            "intuitentityid": str(number),
            "intuitaccountid": REALM_ID,
            "data": {},
        }
        for number in range(first_number, first_number + count)
    ]


def signed_headers(case: Case, url: str, body: bytes, keys: WebhookSecrets, now_ms: int) -> dict[str, str]:
    """The headers HubSpot (v3) or Intuit would send with `body` posted to `url`."""
    if case.provider == "hubspot":
        timestamp = str(now_ms)
        return {
            "Content-Type": "application/json",
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature-v3": signatures.hubspot_v3(keys.hubspot_client_secret, "POST", url, body, timestamp),
        }
    return {
        "Content-Type": "application/cloudevents+json",
        "intuit-signature": signatures.intuit(keys.intuit_verifier_token, body),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class SignedRequest:
    path: str
    body: bytes
    headers: dict[str, str]

    def call(self, base_url: str, label: str) -> Call:
        url, body, headers = base_url + self.path, self.body, self.headers

        async def send(session: aiohttp.ClientSession) -> int:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        return Call(label, send)


def presign(case: Case, base_url: str, keys: WebhookSecrets, requests: int, first_number: int) -> list[SignedRequest]:
    """`requests` requests of `case.events_per_request` distinct events each, numbered from `first_number` (so
    runs never repeat an event), signed now for `base_url`."""
    now = time.time()
    now_ms = int(now * 1000)
    signed = []
    for index in range(requests):
        first = first_number + index * case.events_per_request
        if case.provider == "hubspot":
            events = hubspot_events(first, case.events_per_request, now_ms=now_ms)
        else:
            events = intuit_cloudevents(first, case.events_per_request, now=now)
        body = orjson.dumps(events)
        signed.append(SignedRequest(case.path, body, signed_headers(case, base_url + case.path, body, keys, now_ms)))
    return signed


def pool_size(case: Case) -> int:
    per_second = min(POOL_MAX_REQUESTS_PER_SECOND, POOL_EVENTS_PER_SECOND / case.events_per_request)
    return math.ceil(per_second * (WARMUP_SECONDS + DURATION_SECONDS))


async def purge_changes_queue(rabbitmq_url: str) -> int:
    """Empty `hsqbo.changes` (declaring the topology first if this node has never seen it); returns how many
    messages were dropped."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        await declare_topology(channel)
        queue = await channel.get_queue(CHANGES_QUEUE)
        purged = await queue.purge()
        return int(purged.message_count or 0)


async def _measure(calls: Iterator[Call]) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        return await closed_loop(
            session, calls, connections=CONNECTIONS, warmup=WARMUP_SECONDS, duration=DURATION_SECONDS
        )


def _figures(result: LoadResult, case: Case) -> dict[str, Any]:
    summary = result.summary
    return {
        **summary.to_dict(),
        "events_per_second": round(summary.requests_per_second * case.events_per_request, 1),
    }


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of the round with the median requests/s (the middle one of an odd number of rounds)."""
    ordered = sorted(rounds, key=lambda figures: figures["requests_per_second"])
    return ordered[len(ordered) // 2]


def _row(case: Case, server: str, figures: dict[str, Any], ratio: float | None) -> dict[str, Any]:
    return {
        "case": case.name,
        "server": server,
        "req/s": figures["requests_per_second"],
        "events/s": figures["events_per_second"],
        "p50 ms": figures["p50_ms"],
        "p99 ms": figures["p99_ms"],
        "non-2xx": figures["non_2xx"],
        "receiver/bare": "" if ratio is None else f"{ratio:.2f}",
    }


async def _run() -> BenchmarkResult:
    settings = Settings()  # HSQBO_RABBITMQ_URL from the environment (`make bench` points it at its node)
    keys = WebhookSecrets.generate()
    receiver_port, bare_port, metrics_port = free_ports(3)
    receiver_url, bare_url = f"http://127.0.0.1:{receiver_port}", f"http://127.0.0.1:{bare_port}"
    # The public URL pins the URI the receiver rebuilds for v3 signatures to the one signed here.
    receiver_env = {
        **keys.environment(),
        "HSQBO_PUBLIC_URL": receiver_url,
        "HSQBO_RABBITMQ_URL": settings.rabbitmq_url,
        "HSQBO_METRICS_PORT": str(metrics_port),
    }  # its own /metrics port: 9100 may be taken here
    await purge_changes_queue(settings.rabbitmq_url)
    cases: list[dict[str, Any]] = []
    table: list[dict[str, Any]] = []
    async with (
        running(hsqbo("receiver", "--port", str(receiver_port)), receiver_env, [f"{receiver_url}/readyz"]) as server,
        running(
            python_module("benchmarks._bare_endpoint", "--port", str(bare_port)), {}, [f"{bare_url}/readyz"]
        ) as bare,
    ):
        first_number = 0
        for case in CASES:
            rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "receiver": []}
            for _ in range(ROUNDS):
                count = pool_size(case)
                pool = presign(case, receiver_url, keys, count, first_number)
                first_number += count * case.events_per_request  # no event repeats across rounds
                bare_calls = itertools.cycle([request.call(bare_url, case.name) for request in pool])
                rounds["bare"].append(_figures(await _measure(bare_calls), case))
                receiver_calls = iter([request.call(receiver_url, case.name) for request in pool])
                rounds["receiver"].append(_figures(await _measure(receiver_calls), case))
            bare_figures, receiver = median_round(rounds["bare"]), median_round(rounds["receiver"])
            ratio = receiver["requests_per_second"] / bare_figures["requests_per_second"]
            cases.append(
                {
                    "case": case.name,
                    "provider": case.provider,
                    "events_per_request": case.events_per_request,
                    "receiver": receiver,
                    "bare": bare_figures,
                    "receiver_over_bare_requests_per_second": round(ratio, 3),
                    "rounds_requests_per_second": {
                        server: [figures["requests_per_second"] for figures in measured]
                        for server, measured in rounds.items()
                    },
                }
            )
            table += [_row(case, "bare", bare_figures, None), _row(case, "receiver", receiver, ratio)]
        rss_mb = {
            name: round(rss_kib(process.pid) / 1024, 1)
            for name, process in (("receiver", server), ("bare_starlette", bare))
        }
    purged = await purge_changes_queue(settings.rabbitmq_url)
    details = {
        "settings": {
            "connections": CONNECTIONS,
            "warmup_seconds": WARMUP_SECONDS,
            "duration_seconds": DURATION_SECONDS,
            "rounds": ROUNDS,
            "receiver_log_level": settings.log_level,
            "publish_timeout_seconds": settings.publish_timeout_seconds,
        },
        "cases": cases,
        "queue_messages_purged_after": purged,
        "rss_mb_after_run": rss_mb,
    }
    update_latest({"receiver": headline(cases), "rss_mb": rss_mb})
    return BenchmarkResult("receiver", table, details)


def headline(cases: list[dict[str, Any]]) -> dict[str, float]:
    """latest.json's `receiver`: single HubSpot events (requests/s) against the bare endpoint in the same run, and
    events/s of HubSpot deliveries of 20."""
    by_name = {case["case"]: case for case in cases}
    single, batch = by_name[Case("hubspot", 1).name], by_name[Case("hubspot", 20).name]
    return {
        "rps": single["receiver"]["requests_per_second"],
        "batch20_events_per_s": batch["receiver"]["events_per_second"],
        "baseline_rps": single["bare"]["requests_per_second"],
        "ratio": single["receiver_over_bare_requests_per_second"],
    }


def run() -> BenchmarkResult:
    return run_load(_run())
