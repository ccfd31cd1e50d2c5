"""Every error category hsqbo can record or dead-letter explains itself (services/status/_explanations.py)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from services.status._explanations import EXPLANATIONS, UNKNOWN, explain
from services.worker._plan import TOTAL_MISMATCH
from services.worker.rules._currency import OTHER_CURRENCY
from services.worker.rules._invoice_lines import NOT_REPRESENTABLE
from shared import errors
from shared.deadletters import error_category

WORKER = Path(__file__).parents[2] / "services" / "worker"
NAMES = ("category", "error_category")
BROKER_REASONS = {"rejected", "delivery_limit", "expired", "maxlen", "unparseable"}  # x-death reasons, ours


def _error_categories() -> set[str]:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.HsqboError)]
    return {error_category(c("x", provider="hubspot") if issubclass(c, errors.ApiError) else c("x")) for c in classes}


def _rule_categories() -> set[str]:
    """Every literal category a rule or the engine records: `category="..."`, `error_category="..."` (an argument or a
    link change), `Excluded`'s default and the engine's `_record(..., "config", ...)`."""
    found = {"filtered", "config"}
    for path in WORKER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg in NAMES:
                values = [node.value]
            elif isinstance(node, ast.Dict):  # a plan's link changes: {"error_category": "..."}
                values = [v for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value in NAMES]  # fmt: skip
            else:
                continue
            found |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return found | {OTHER_CURRENCY, NOT_REPRESENTABLE, TOTAL_MISMATCH}


def test_every_error_of_shared_errors_has_an_explanation() -> None:
    categories = _error_categories()
    assert {"duplicate_name", "server_error", "missing_scopes", "auth_revoked"} <= categories
    assert sorted(categories - EXPLANATIONS.keys()) == []


def test_every_category_a_rule_records_or_the_broker_gives_has_an_explanation() -> None:
    categories = _rule_categories()
    assert {"customer_not_synced", "duplicate_display_name", "no_sku", "needs_review"} <= categories
    assert sorted((categories | BROKER_REASONS) - EXPLANATIONS.keys()) == []


def test_an_explanation_says_what_happened_why_and_what_to_change() -> None:
    for category, explanation in EXPLANATIONS.items():
        assert all((explanation.what, explanation.why, explanation.fix)), category
    line = EXPLANATIONS["duplicate_display_name"].line()
    assert line.startswith("QuickBooks already has a customer with this display name. Why: ")
    assert " Fix: Rename one of them in QuickBooks" in line


def test_no_category_is_no_explanation_and_an_unknown_one_is_the_generic_one() -> None:
    assert explain(None) is None
    assert explain("") is None
    assert explain("something_new") is UNKNOWN
