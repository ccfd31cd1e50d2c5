"""Date conversions between the two sides, each naming its zone (`rules/_dates.py`)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.worker.rules import _dates as dates
from services.worker.rules.invoices import _day

SAN_FRANCISCO = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def test_a_payment_at_2130_in_san_francisco_on_5_january_is_dated_the_5th_in_qbo() -> None:
    instant = dt.datetime(2026, 1, 5, 21, 30, tzinfo=SAN_FRANCISCO)
    assert dates.hubspot_datetime(instant) == "2026-01-06T05:30:00.000Z"  # the 6th in UTC
    assert dates.qbo_txn_date("2026-01-06T05:30:00.000Z", SAN_FRANCISCO) == "2026-01-05"
    assert dates.qbo_txn_date(str(int(instant.timestamp() * 1000)), SAN_FRANCISCO) == "2026-01-05"
    assert dates.qbo_txn_date("2026-01-06T05:30:00.000Z", UTC) == "2026-01-06"


def test_a_qbo_day_becomes_the_start_of_that_day_in_the_company_zone_and_back() -> None:
    start = dates.start_of_day(dt.date(2026, 1, 5), SAN_FRANCISCO)
    assert dates.hubspot_datetime(start) == "2026-01-05T08:00:00.000Z"
    assert dates.qbo_txn_date(dates.hubspot_datetime(start), SAN_FRANCISCO) == "2026-01-05"
    summer = dates.start_of_day(dt.date(2026, 7, 5), SAN_FRANCISCO)  # daylight saving time: UTC-7
    assert dates.hubspot_datetime(summer) == "2026-07-05T07:00:00.000Z"


def test_a_hubspot_date_is_midnight_utc_of_the_day() -> None:
    assert dates.hubspot_date(dt.date(2026, 3, 2)) == "1772409600000"
    for value in ("2026-03-02", "2026-03-02T00:00:00.000Z", "1772409600000"):
        assert dates.hubspot_day(value, SAN_FRANCISCO) == dt.date(2026, 3, 2)
        assert dates.hubspot_day(value, BERLIN) == dt.date(2026, 3, 2)


def test_any_other_instant_is_the_day_it_falls_on_in_the_portal_zone() -> None:
    midnight_in_berlin = "2026-03-01T23:00:00.000Z"  # what a date picker in Berlin may store for 2 March
    assert dates.hubspot_day(midnight_in_berlin, BERLIN) == dt.date(2026, 3, 2)
    assert dates.hubspot_day(midnight_in_berlin, SAN_FRANCISCO) == dt.date(2026, 3, 1)
    assert _day(midnight_in_berlin, BERLIN) == "2026-03-02"
    assert _day("", BERLIN) is None
    assert _day("not a date", BERLIN) is None


def test_created_after_counts_from_midnight_in_the_zone_given() -> None:
    setup = dt.date(2026, 11, 22)
    evening_before = dt.datetime(2026, 11, 21, 23, 0, tzinfo=SAN_FRANCISCO)  # 22 Nov 07:00 UTC
    assert not dates.created_on_or_after(evening_before, setup, SAN_FRANCISCO)
    assert dates.created_on_or_after(evening_before, setup, UTC)
    assert dates.created_on_or_after(dt.datetime(2026, 11, 22, 0, 0, tzinfo=SAN_FRANCISCO), setup, SAN_FRANCISCO)
    assert not dates.created_on_or_after(None, setup, UTC)


def test_a_naive_instant_names_no_zone_and_is_refused() -> None:
    with pytest.raises(ValueError, match="zone"):
        dates.day_in(dt.datetime(2026, 1, 5, 21, 30), SAN_FRANCISCO)


ZONES = ["America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC",
         "Australia/Lord_Howe", "America/St_Johns"]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(day=st.dates(dt.date(2000, 1, 1), dt.date(2100, 12, 31)), zone=st.sampled_from(ZONES))
def test_every_day_survives_both_round_trips_in_every_zone(day: dt.date, zone: str) -> None:
    company = ZoneInfo(zone)
    # QBO day -> HubSpot datetime (start of the day in the company's zone) -> QBO day
    assert dates.qbo_txn_date(dates.hubspot_datetime(dates.start_of_day(day, company)), company) == day.isoformat()
    # QBO day -> HubSpot date value (midnight UTC) -> the same day, whatever the portal's zone
    assert dates.hubspot_day(dates.hubspot_date(day), company) == day


@settings(max_examples=40, deadline=None)
@given(moment=st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
       zone=st.sampled_from(ZONES))  # fmt: skip
def test_an_instant_is_dated_on_its_day_in_the_company_zone(moment: dt.datetime, zone: str) -> None:
    company = ZoneInfo(zone)
    day = dt.date.fromisoformat(str(dates.qbo_txn_date(dates.hubspot_datetime(moment), company)))
    assert dates.start_of_day(day, company) <= moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert moment < dates.start_of_day(day + dt.timedelta(days=1), company)


def test_without_a_zone_only_records_created_near_the_day_need_one() -> None:
    setup = dt.date(2026, 11, 22)
    assert dates.created_on_or_after_in_any_zone(dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC), setup) is True
    assert dates.created_on_or_after_in_any_zone(dt.datetime(2026, 11, 21, 9, 59, tzinfo=dt.UTC), setup) is False
    assert dates.created_on_or_after_in_any_zone(dt.datetime(2026, 11, 22, 11, 59, tzinfo=dt.UTC), setup) is None
    assert dates.created_on_or_after_in_any_zone(dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC), setup) is None
    assert dates.created_on_or_after_in_any_zone(None, setup) is False


@settings(max_examples=40, deadline=None)
@given(moment=st.datetimes(dt.datetime(2026, 11, 19), dt.datetime(2026, 11, 25), timezones=st.just(dt.UTC)),
       zone=st.sampled_from(ZONES))  # fmt: skip
def test_a_decision_without_the_zone_is_the_one_every_zone_makes(moment: dt.datetime, zone: str) -> None:
    decided = dates.created_on_or_after_in_any_zone(moment, dt.date(2026, 11, 22))
    if decided is not None:
        assert decided == dates.created_on_or_after(moment, dt.date(2026, 11, 22), ZoneInfo(zone))
