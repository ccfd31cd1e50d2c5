"""QBO's rules for the names hsqbo writes (Intuit's Customer and Item references; qbo-api.md §4.1, §4.2):

    Customer DisplayName                                 500 characters
    Customer GivenName, MiddleName, FamilyName           100
    Customer CompanyName                                 100
    Item Name                                            100
    Customer PrimaryPhone.FreeFormNumber                 30 (cut, as `cut_to`; no character rule)
    none of them may hold a colon (QBO's sub-customer / sub-item separator), a tab or a newline

A name is made to fit (`qbo_name`): a colon becomes " - ", tabs and newlines spaces, runs of spaces one, and it is cut
at the limit. The same form is how both sides' values compare (`canonical`), so a HubSpot name QBO cannot hold as
written is not taken for an edit on either side once QBO holds its fitted form. A name disambiguated with a suffix
keeps the whole suffix and cuts the base instead (`with_suffix`), so two suffixes give two names even at the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

DISPLAY_NAME_MAX = 500
PERSON_NAME_MAX = 100  # GivenName, MiddleName, FamilyName
PHONE_MAX = 30
COMPANY_NAME_MAX = 100
ITEM_NAME_MAX = 100


def qbo_name(value: Any, limit: int) -> str | None:
    """`value` as a QBO name field holds it: no colon, tab or newline, spaces collapsed, at most `limit` characters
    (None when nothing is left)."""
    if value is None:
        return None
    fitted = " ".join(str(value).replace(":", " - ").split())[:limit].rstrip()
    return fitted or None


def canonical(limit: int) -> Callable[[Any], str | None]:
    """A field map's `canonical` for a QBO name field of this limit."""

    def fitted(value: Any) -> str | None:
        return qbo_name(value, limit)

    return fitted


def cut_to(limit: int) -> Callable[[Any], str | None]:
    """A field map's `canonical` for a QBO text field with only a length limit (a phone number: 30)."""

    def cut(value: Any) -> str | None:
        text = None if value is None else str(value).strip()[:limit].rstrip()
        return text or None

    return cut


def with_suffix(base: str, suffix: str, limit: int) -> str:
    """`base (suffix)` in at most `limit` characters: the base is cut, the suffix kept whole (itself cut only when
    it alone would not fit)."""
    tail = f" ({qbo_name(suffix, limit) or ''})"
    if len(tail) >= limit:
        tail = tail[: limit - 1] + ")"
        return tail.strip()
    head = qbo_name(base, limit - len(tail)) or ""
    return f"{head}{tail}" if head else tail.strip()


def candidates(base: str, suffixes: Iterable[str | None], limit: int) -> list[str]:
    """The names to try in order: `base` fitted, then `base (suffix)` for each suffix, each distinct (compared
    case-insensitively, as QBO compares names) and within `limit`."""
    first = qbo_name(base, limit)
    names = [first] if first else []
    for suffix in suffixes:
        if suffix and qbo_name(suffix, limit) not in (None, first):
            names.append(with_suffix(base, suffix, limit))
    distinct: list[str] = []
    seen: set[str] = set()
    for name in names:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            distinct.append(name)
    return distinct
