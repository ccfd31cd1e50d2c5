"""Demo traffic: a HubSpot user and a QuickBooks user taking turns, one edit every few seconds, through the
sandboxes' `user_edit` (so each edit sends the same signed webhook a real one would). The edits build on each
other so every kind of record moves: a contact made in HubSpot, a customer's phone changed in QBO, an item with a
SKU, the contact's phone changed back in HubSpot, an invoice in QBO for the customer edited earlier, its payment."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hsqbo_sandbox import RunningSandbox
from shared.logging import get_logger

log = get_logger("hsqbo.run")

_FIRST = ("Amara", "Bruno", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Julia")
_LAST = ("Adeyemi", "Berg", "Costa", "Duval", "Eriksen", "Fischer", "Gallo", "Horvat", "Ito", "Jansen")
_GOODS = ("Design sprint", "Maintenance visit", "Cable kit", "Sensor pack", "Workshop seat", "Site survey")


@dataclasses.dataclass(frozen=True, slots=True)
class DemoEdit:
    system: str  # "hubspot" | "quickbooks"
    edit: str  # what the user did, e.g. "contact created"
    object_id: str
    label: str  # a name a reader can look for on the other side


class DemoTraffic:
    """`step()` makes the next edit of the cycle; `run()` makes one every `interval` seconds until stopped."""

    def __init__(self, sandbox: RunningSandbox, portal_id: int, realm_id: str, *, seed: int | None = None) -> None:
        self._sandbox = sandbox
        self._portal_id = portal_id
        self._realm_id = realm_id
        self._rng = random.Random(seed)
        # Numbers name what the demo creates; counting on from the realm's items keeps them unique across runs
        # that share a --state-file (QBO item names, SKUs and HubSpot emails must not repeat).
        self._numbers = itertools.count(len(self._records("Item")) + 1)
        self._cycle: itertools.cycle[Callable[[], DemoEdit]] = itertools.cycle(
            (
                self._contact_created,
                self._customer_phone_changed,
                self._item_created,
                self._contact_phone_changed,
                self._invoice_created,
                self._invoice_paid,
            )
        )
        self._contact_id: str | None = None
        self._customer_id: str | None = None
        self._item: dict[str, Any] | None = None
        self._invoice: dict[str, Any] | None = None

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
                return  # stopped; a timeout means it is time for the next edit
            try:
                edit = self.step()
            except Exception as exc:  # a refused edit is the sandbox enforcing a rule: say so and go on
                log.warning("demo_edit_refused", error=f"{type(exc).__name__}: {exc}"[:200])
                continue
            log.info("demo_edit", system=edit.system, edit=edit.edit, object_id=edit.object_id, label=edit.label)

    def step(self) -> DemoEdit:
        return next(self._cycle)()

    # --- HubSpot user ------------------------------------------------------------------------------------------------

    def _hubspot(self, action: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = self._sandbox.hubspot.user_edit(
            portal_id=self._portal_id, object_type="contacts", action=action, **fields
        )
        return record

    def _contact_created(self) -> DemoEdit:
        first, last, number = self._rng.choice(_FIRST), self._rng.choice(_LAST), next(self._numbers)
        email = f"{first}.{last}.{number}@demo.example.com".lower()
        properties = {"email": email, "firstname": first, "lastname": last, "phone": self._phone()}
        self._contact_id = str(self._hubspot("create", properties=properties)["id"])
        return DemoEdit("hubspot", "contact created", self._contact_id, email)

    def _contact_phone_changed(self) -> DemoEdit:
        if self._contact_id is None:
            return self._contact_created()
        record = self._hubspot("update", id=self._contact_id, properties={"phone": self._phone()})
        return DemoEdit("hubspot", "contact phone changed", self._contact_id, str(record["properties"]["email"]))

    # --- QuickBooks user ---------------------------------------------------------------------------------------------

    def _qbo(self, entity: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self._sandbox.qbo.user_edit(self._realm_id, entity, action, data).body
        return body

    def _records(self, entity: str) -> list[dict[str, Any]]:
        return [record.data for record in self._sandbox.qbo.realms[self._realm_id].records[entity].values()]

    def _customer_phone_changed(self) -> DemoEdit:
        customers = [c for c in self._records("Customer") if c.get("Active") and c.get("PrimaryEmailAddr")]
        customer = self._rng.choice(customers)
        self._qbo("Customer", "update", {"Id": customer["Id"], "PrimaryPhone": {"FreeFormNumber": self._phone()}})
        self._customer_id = str(customer["Id"])
        return DemoEdit("quickbooks", "customer phone changed", self._customer_id, customer["DisplayName"])

    def _item_created(self) -> DemoEdit:
        income = next(a for a in self._records("Account") if a["AccountSubType"] == "ServiceFeeIncome")
        number = next(self._numbers)
        self._item = self._qbo("Item", "create", {
            "Name": f"{self._rng.choice(_GOODS)} {number}", "Type": "Service", "Sku": f"DEMO-{number:05d}",
            "UnitPrice": Decimal(self._rng.randint(20, 400)), "IncomeAccountRef": {"value": income["Id"]},
        })  # fmt: skip
        return DemoEdit("quickbooks", "item created", str(self._item["Id"]), self._item["Name"])

    def _invoice_created(self) -> DemoEdit:
        if self._customer_id is None or self._item is None:  # the cycle makes both first; a refusal may not have
            return self._item_created() if self._item is None else self._customer_phone_changed()
        quantity = self._rng.randint(1, 5)
        price = self._item["UnitPrice"]
        self._invoice = self._qbo("Invoice", "create", {"CustomerRef": {"value": self._customer_id}, "Line": [{
            "DetailType": "SalesItemLineDetail", "Amount": quantity * price, "Description": self._item["Name"],
            "SalesItemLineDetail": {"ItemRef": {"value": self._item["Id"]}, "Qty": quantity, "UnitPrice": price,
                                    "TaxCodeRef": {"value": "NON"}},
        }]})  # fmt: skip
        return DemoEdit("quickbooks", "invoice created", str(self._invoice["Id"]), f"#{self._invoice['DocNumber']}")

    def _invoice_paid(self) -> DemoEdit:
        if self._invoice is None:
            return self._invoice_created()
        invoice, self._invoice = self._invoice, None
        balance = invoice["Balance"]
        payment = self._qbo("Payment", "create", {
            "CustomerRef": invoice["CustomerRef"], "TotalAmt": balance,
            "Line": [{"Amount": balance, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        })  # fmt: skip
        return DemoEdit("quickbooks", "payment received", str(payment["Id"]), f"for invoice #{invoice['DocNumber']}")

    def _phone(self) -> str:
        return f"+1 555 {self._rng.randint(100, 999)} {self._rng.randint(1000, 9999)}"
