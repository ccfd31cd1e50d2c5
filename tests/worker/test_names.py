"""QBO's name rules (`_names`): forbidden characters, length limits, disambiguation at the limit."""

from __future__ import annotations

from services.worker import _names


def test_a_name_loses_colons_tabs_newlines_and_extra_spaces() -> None:
    assert _names.qbo_name("Acme: West\tCoast\n Inc", 100) == "Acme - West Coast Inc"
    assert _names.qbo_name("  ", 100) is None
    assert _names.qbo_name(None, 100) is None


def test_a_name_is_cut_at_its_limit() -> None:
    assert _names.qbo_name("x" * 600, _names.DISPLAY_NAME_MAX) == "x" * 500
    assert _names.qbo_name("y" * 150, _names.PERSON_NAME_MAX) == "y" * 100


def test_both_sides_compare_in_the_fitted_form() -> None:
    fitted = _names.canonical(_names.COMPANY_NAME_MAX)
    assert fitted("Acme: Ltd") == fitted("Acme - Ltd") == "Acme - Ltd"


def test_a_suffix_is_kept_whole_and_the_base_cut() -> None:
    name = _names.with_suffix("C" * 200, "Jane Doe", 100)
    assert len(name) == 100
    assert name.endswith(" (Jane Doe)")


def test_disambiguation_of_a_200_character_company_name_gives_distinct_names_at_the_limit() -> None:
    base = "Company " + "n" * 492  # 500 characters: DisplayName's limit
    names = _names.candidates(base, ["Jane Doe", "jane@example.com", "HubSpot 512"], _names.DISPLAY_NAME_MAX)
    assert len(names) == 4
    assert len({name.casefold() for name in names}) == 4
    assert all(len(name) <= 500 for name in names)
    assert names[1].endswith(" (Jane Doe)")
    assert names[3].endswith(" (HubSpot 512)")


def test_candidates_skip_empty_and_base_equal_suffixes() -> None:
    names = _names.candidates("Jane Doe", ["Jane Doe", None, "", "HubSpot 7"], 500)
    assert names == ["Jane Doe", "Jane Doe (HubSpot 7)"]


def test_an_oversized_suffix_still_fits() -> None:
    name = _names.with_suffix("Base", "s" * 200, 100)
    assert len(name) <= 100


def test_a_phone_number_is_cut_to_qbos_30_characters() -> None:
    phone = _names.cut_to(_names.PHONE_MAX)
    assert phone(" +1 555 0100 ext. 12345678901234567890 ") == "+1 555 0100 ext. 1234567890123"
    assert _names.cut_to(30)("") is None
