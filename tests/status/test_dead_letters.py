"""The dead-letter pages' pure parts: the filter from the page's fields, the link to a letter's record, instants to
the millisecond."""

from __future__ import annotations

from services.status._dead_letters import letter_filter, record_path, when_ms
from shared.deadletters import DeadLetter, LetterFilter, Payload

NOW = 1_765_108_800.0  # 2025-12-07 12:00:00 UTC


def letter(**fields: object) -> DeadLetter:
    base: dict[str, object] = {
        "id": "L1", "payload": Payload.APPLY, "connection": "acme", "kind": "contact", "side": "hubspot",
        "object_id": "51", "attempts": 4, "error_category": "server_error", "error_message": "503",
        "first_failed_at": NOW - 60, "last_failed_at": NOW, "source_queue": "hsqbo.apply",
    }  # fmt: skip
    return DeadLetter(**{**base, **fields})  # type: ignore[arg-type]


def test_the_filter_reads_the_pages_fields_and_names_what_it_could_not_read() -> None:
    fields = {"connection": "acme", "kind": "invoice", "category": "server_error", "since": "2h",
              "until": "2025-12-07T11:30"}  # fmt: skip
    where, unreadable = letter_filter(fields.get, NOW)
    assert where == LetterFilter(connection="acme", kind="invoice", category="server_error", since=NOW - 7200,
                                 until=NOW - 1800)  # fmt: skip
    assert unreadable == []
    where, unreadable = letter_filter({"since": "yesterday-ish", "category": " "}.get, NOW)
    assert (where, unreadable) == (LetterFilter(), ["since"])
    empty: dict[str, str] = {}
    assert letter_filter(empty.get, NOW) == (LetterFilter(), [])


def test_a_letter_links_to_its_record_when_it_names_one() -> None:
    assert record_path(letter()) == "/connections/acme/contact/hubspot/51"
    assert record_path(letter(object_id="a/b")) == "/connections/acme/contact/hubspot/a%2Fb"
    assert record_path(letter(payload=Payload.CHANGE, connection=None, kind="customer")) is None
    assert record_path(letter(payload=Payload.UNPARSEABLE, connection=None, kind=None, side=None)) is None


def test_instants_show_to_the_millisecond() -> None:
    assert when_ms(NOW + 0.123) == "2025-12-07T12:00:00.123 UTC"
    assert when_ms(None) == "—"
