"""The emulator's JSON uses Intuit's field names and JSON types for them, as Intuit's XSDs define
(/work/shared/reference/qbo-xsd, read at test time, never vendored; the JSON API uses the XML element names)."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hsqbo_sandbox.qbo import QboSandbox
from hsqbo_sandbox.qbo import _company as company

XSD_DIR = Path("/work/shared/reference/qbo-xsd")
XS = "{http://www.w3.org/2001/XMLSchema}"
NUMBER_TYPES = frozenset({"decimal", "double", "float", "int", "integer", "long", "short", "positiveInteger"})
STRING_TYPES = frozenset({"string", "date", "dateTime", "time", "anyURI", "ID", "IDREF", "token"})

pytestmark = pytest.mark.skipif(not XSD_DIR.is_dir(), reason=f"Intuit's XSDs are not at {XSD_DIR}")


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    type_name: str
    repeated: bool


@dataclasses.dataclass(slots=True)
class Schema:
    complex_types: dict[str, tuple[str | None, dict[str, Field]]]  # name -> (base, fields)
    simple_types: dict[str, str]  # name -> base xs type

    def fields(self, type_name: str) -> dict[str, Field]:
        base, own = self.complex_types[type_name]
        return {**(self.fields(base) if base in self.complex_types else {}), **own}

    def json_kind(self, type_name: str) -> str:
        while type_name in self.simple_types:
            type_name = self.simple_types[type_name]
        if type_name in self.complex_types:
            return "object"
        if type_name == "boolean":
            return "boolean"
        if type_name in NUMBER_TYPES:
            return "number"
        return "string"


def _local(name: str | None) -> str:
    return (name or "").split(":")[-1]


@pytest.fixture(scope="module")
def schema() -> Schema:
    complex_types: dict[str, tuple[str | None, dict[str, Field]]] = {}
    simple_types: dict[str, str] = {}
    for path in XSD_DIR.glob("*.xsd"):
        root = ET.parse(path).getroot()
        for node in root.findall(f"{XS}simpleType"):
            restriction = node.find(f"{XS}restriction")
            simple_types[node.attrib["name"]] = (
                _local(restriction.attrib.get("base")) if restriction is not None else "string"
            )
        for node in root.findall(f"{XS}complexType"):
            extension = node.find(f".//{XS}extension")
            base = _local(extension.attrib["base"]) if extension is not None else None
            fields = {
                element.attrib["name"]: Field(_local(element.attrib.get("type", "string")),
                                              element.attrib.get("maxOccurs", "1") != "1")
                for element in node.iter(f"{XS}element") if "name" in element.attrib
            }  # fmt: skip
            fields.update({a.attrib["name"]: Field(_local(a.attrib.get("type", "string")), False)
                           for a in node.iter(f"{XS}attribute") if "name" in a.attrib})  # fmt: skip
            if node.find(f"{XS}simpleContent") is not None:  # text content: JSON calls it "value" (ReferenceType)
                fields["value"] = Field(base or "string", False)
                base = None
            complex_types[node.attrib["name"]] = (base, fields)
    return Schema(complex_types, simple_types)


@pytest.fixture(scope="module")
def entities() -> dict[str, dict[str, Any]]:
    sandbox = QboSandbox()
    realm_id = sandbox.seed(customers=5, items=6, invoices=20)["realm_id"]
    realm = sandbox.realms[realm_id]
    paid = next(r.data for r in realm.records["Invoice"].values() if r.data["LinkedTxn"])
    return {
        "Customer": realm.records["Customer"]["1"].data,
        "Item": realm.records["Item"]["2"].data,  # with a Sku
        "Invoice": paid,
        "Payment": realm.records["Payment"]["1"].data,
    }


def _check(schema: Schema, type_name: str, data: dict[str, Any], where: str) -> list[str]:
    fields = schema.fields(type_name)
    problems = []
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{where}.{key} is not a field of {type_name}")
            continue
        field = fields[key]
        if field.repeated:
            if not isinstance(value, list):
                problems.append(f"{where}.{key} should be a list")
            continue
        kind = schema.json_kind(field.type_name)
        actual = {bool: "boolean", int: "number", Decimal: "number", str: "string", dict: "object"}.get(type(value))
        if value is not None and actual != kind:
            problems.append(f"{where}.{key} is {actual}, the XSD says {kind} ({field.type_name})")
        elif kind == "object" and isinstance(value, dict) and field.type_name in schema.complex_types:
            problems += _check(schema, field.type_name, value, f"{where}.{key}")
    return problems


@pytest.mark.parametrize("entity", ["Customer", "Item", "Invoice", "Payment"])
def test_entity_json_uses_the_xsd_field_names_and_types(
    schema: Schema, entities: dict[str, dict[str, Any]], entity: str
) -> None:
    assert _check(schema, entity, entities[entity], entity) == []


@pytest.mark.parametrize("entity", ["Invoice", "Payment"])
def test_transaction_lines_use_the_xsd_line_fields(
    schema: Schema, entities: dict[str, dict[str, Any]], entity: str
) -> None:
    problems = [p for line in entities[entity]["Line"] for p in _check(schema, "Line", line, f"{entity}.Line")]
    assert problems == []


def test_preferences_company_info_and_exchange_rate_use_the_xsd_fields(schema: Schema) -> None:
    settings = company.CompanySettings(multicurrency=True, exchange_rates={"EUR": "1.1"})
    assert _check(schema, "Preferences", company.preferences(settings, 0.0), "Preferences") == []
    info = company.company_info(settings, "4620816365000001", "Sandbox Co", 0.0)
    assert _check(schema, "CompanyInfo", info, "CompanyInfo") == []
    rate = company.exchange_rate(settings, "EUR", "2026-01-05", "2026-01-05")
    assert _check(schema, "ExchangeRate", rate, "ExchangeRate") == []
