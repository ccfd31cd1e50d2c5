"""Smoke tests of the benchmarks' pure helpers (no servers, no load): the figures they print rest on these."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from benchmarks import receiver, sandbox, sync
from benchmarks._latest import INCUMBENT_ROW, TABLE_END, TABLE_START, missing_fields, publish, update_latest
from benchmarks._load import Call, closed_loop, open_loop
from benchmarks._report import format_table
from benchmarks._stats import percentile, summarize
from services.receiver import _hubspot, _intuit
from shared import signatures

BASE_URL = "http://127.0.0.1:8080"


def test_percentile_is_nearest_rank_of_observed_values() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


def test_percentile_refuses_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_summary_counts_every_non_2xx_answer_and_transport_error() -> None:
    summary = summarize(2.0, [0.001, 0.002, 0.003, 0.004], Counter({"200": 1, "201": 1, "503": 1, "error:X": 1}))
    assert summary.requests_per_second == 2.0
    assert summary.non_2xx == 2
    assert summary.p50_ms == 2.0


@pytest.mark.parametrize("case", receiver.CASES, ids=lambda case: case.name)
def test_presigned_requests_verify_and_carry_distinct_queued_events(case: receiver.Case) -> None:
    keys = receiver.WebhookSecrets.generate()
    requests = receiver.presign(case, BASE_URL, keys, requests=3, first_number=10)
    event_ids = []
    for request in requests:
        if case.provider == "hubspot":
            headers = request.headers
            signatures.verify_hubspot_v3(
                keys.hubspot_client_secret,
                "POST",
                BASE_URL + request.path,
                request.body,
                headers["X-HubSpot-Request-Timestamp"],
                headers["X-HubSpot-Signature-v3"],
            )
            envelopes, ignored = _hubspot.parse(request.body)
        else:
            signatures.verify_intuit(keys.intuit_verifier_token, request.body, request.headers["intuit-signature"])
            envelopes, ignored = _intuit.parse(request.body, received_at_ms=0)
        assert ignored == []
        event_ids += [envelope.event_id for envelope in envelopes]
    assert len(set(event_ids)) == 3 * case.events_per_request


def test_the_table_aligns_columns_across_rows() -> None:
    lines = format_table([{"case": "a", "req/s": 1.5}, {"case": "longer", "req/s": 1000.0}]).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[0].split() == ["case", "req/s"]


def test_the_sandbox_mix_adds_up_and_every_kind_builds_a_request() -> None:
    data = sandbox.SeededData(
        portal_id=2001,
        contacts=[("1", "a@example.com")],
        companies=[("2", "Acme Labs 1")],
        hubspot_invoices=["3"],
        realm_id="9130",
        customers=[("1", "O'Brien #1")],
        sync_tokens={"1": "0"},
        invoices=[("4", "1001")],
        items=["5"],
        qbo_counts={"Customer": 1},
    )
    traffic = sandbox.Traffic(data, BASE_URL, BASE_URL, "hubspot-token", "qbo-token")
    assert sum(sandbox.MIX.values()) == 100
    assert {traffic.next_call().label for _ in range(500)} == set(sandbox.MIX)


async def _answer_ok(session: aiohttp.ClientSession) -> int:
    return 200


async def test_open_loop_sends_exactly_the_scheduled_requests() -> None:
    async with aiohttp.ClientSession() as session:
        result = await open_loop(session, lambda: Call("ok", _answer_ok), rate=400.0, warmup=0.0, duration=0.025)
    assert result.summary.requests == 10
    assert result.summary.statuses == {"200": 10}
    assert set(result.by_label) == {"ok"}


async def test_closed_loop_fails_loudly_when_prepared_requests_run_out() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ExceptionGroup) as raised:
            await closed_loop(session, iter([Call("ok", _answer_ok)]), connections=2, warmup=0.0, duration=1.0)
    assert "ran out" in str(raised.value.exceptions[0])


def test_latest_json_keeps_the_other_benchmarks_figures_and_merges_rss_per_process(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    update_latest({"e2e_lag_ms": {"to_qbo": {"p50": 1}}, "rss_mb": {"worker": 80.0}}, path)
    update_latest({"receiver": {"rps": 1.0}, "rss_mb": {"receiver": 60.0}}, path)
    document = json.loads(path.read_text())
    assert document["e2e_lag_ms"] == {"to_qbo": {"p50": 1}}
    assert document["receiver"] == {"rps": 1.0}
    assert document["rss_mb"] == {"worker": 80.0, "receiver": 60.0}
    assert {"machine", "measured_at"} <= set(document)


def test_the_receiver_headline_is_single_events_against_bare_and_deliveries_of_20() -> None:
    def case(name: str, receiver_rps: float, bare_rps: float, events: int) -> dict[str, Any]:
        return {
            "case": name,
            "receiver": {"requests_per_second": receiver_rps, "events_per_second": receiver_rps * events},
            "bare": {"requests_per_second": bare_rps},
            "receiver_over_bare_requests_per_second": round(receiver_rps / bare_rps, 3),
        }

    cases = [case("hubspot x1", 800.0, 1600.0, 1), case("hubspot x20", 700.0, 1500.0, 20), case("intuit x1", 1, 2, 1)]
    assert receiver.headline(cases) == {
        "rps": 800.0, "batch20_events_per_s": 14000.0, "baseline_rps": 1600.0, "ratio": 0.5,
    }  # fmt: skip


def _sample_sync_headline() -> dict[str, Any]:
    lags = {"p50": 400.0, "p95": 450.0, "p99": 480.0}
    lag = {"lag_ms": {"to_qbo": lags, "to_hubspot": lags}, "api_calls_per_change": 3.2, "qbo_reads_per_change": 1.1}
    burst = {"api_calls_per_change": 4.5, "qbo_reads_per_change": 2.0}
    phase = {"records_per_min": 200.0, "hubspot_429": 1, "qbo_429": 2}
    backfilled = {"records": 10_000, "records_per_min": 190.0, "live_lag_ms": lags, "live_edits_all_seen": True}
    return sync.headline(lag, burst, {"to_qbo": phase, "to_hubspot": phase}, backfilled)


def test_a_bench_run_writes_every_field_issue_13_lists(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    figures = _sample_sync_headline()
    update_latest({**figures, "rss_mb": {"sync_stack": 90.0}}, path)
    receiver_figures = {"rps": 800.0, "batch20_events_per_s": 14000.0, "baseline_rps": 1600.0, "ratio": 0.5}
    update_latest({"receiver": receiver_figures, "rss_mb": {"receiver": 60.0}}, path)
    document = json.loads(path.read_text())
    assert missing_fields(document) == []
    assert document["e2e_floor_ms"] == {"to_qbo": 240.0, "to_hubspot": 240.0}
    assert document["throughput"]["http_429"] == 6
    assert missing_fields({"receiver": receiver_figures})[:2] == ["e2e_lag_ms", "e2e_floor_ms"]


def test_the_readmes_quote_latest_json_and_a_partial_run_leaves_them_alone(tmp_path: Path) -> None:
    latest, bench_readme, project_readme = tmp_path / "latest.json", tmp_path / "bench.md", tmp_path / "README.md"
    bench_readme.write_text(f"# Benchmarks\n{TABLE_START}\nold\n{TABLE_END}\nafter\n")
    project_readme.write_text(f"| complaint | hsqbo |\n{INCUMBENT_ROW} old |\n| other | row |\n")
    update_latest({"receiver": {"rps": 1.0}}, latest)
    publish(latest, bench_readme, project_readme)
    assert "old" in bench_readme.read_text()  # a field is missing: nothing written
    receiver_figures = {"rps": 800.0, "batch20_events_per_s": 14000.0, "baseline_rps": 1600.0, "ratio": 0.5}
    update_latest({**_sample_sync_headline(), "receiver": receiver_figures, "rss_mb": {"receiver": 60.0}}, latest)
    publish(latest, bench_readme, project_readme)
    table = bench_readme.read_text()
    assert "old" not in table
    assert "| 400 / 450 / 480 ms |" in table
    assert table.endswith(f"{TABLE_END}\nafter\n")
    row = project_readme.read_text().splitlines()[1]
    assert row.startswith(INCUMBENT_ROW)
    assert "p95 450 ms HubSpot → QBO" in row
    assert "old" not in row


def test_a_qbo_read_is_a_get_or_a_query() -> None:
    assert sync.is_qbo_read("GET", "/v3/company/1/customer/5")
    assert sync.is_qbo_read("POST", "/v3/company/1/query")
    assert not sync.is_qbo_read("POST", "/v3/company/1/customer")
    assert not sync.is_qbo_read("POST", "/v3/company/1/batch")


def test_a_servers_figures_are_its_median_rounds() -> None:
    rounds = [{"requests_per_second": rps, "p50_ms": rps / 1000} for rps in (5000.0, 7000.0, 6000.0)]
    assert receiver.median_round(rounds) == {"requests_per_second": 6000.0, "p50_ms": 6.0}
