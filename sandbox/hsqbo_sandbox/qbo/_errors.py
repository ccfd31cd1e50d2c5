"""QBO Fault bodies, as Intuit documents them: `{"Fault": {"Error": [{"Message", "Detail", "code", "element"}],
"type"}, "time"}`, with the codes clients branch on. `QboFault` is raised anywhere in the emulator and rendered
once, by the API layer (or inline, per item, in a batch response)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


class QboFault(Exception):
    def __init__(
        self, code: str, message: str, detail: str, *, status: int = 400, fault_type: str = "ValidationFault",
        element: str = "",
    ) -> None:  # fmt: skip
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status
        self.fault_type = fault_type
        self.element = element

    def fault(self) -> dict[str, Any]:
        error = {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}
        return {"Error": [error], "type": self.fault_type}


def authentication_failed(detail: str) -> QboFault:
    return QboFault("3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", detail,
                    status=401, fault_type="AUTHENTICATION")  # fmt: skip


def authorization_failed(detail: str) -> QboFault:
    return QboFault("3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403", detail,
                    status=403, fault_type="AUTHENTICATION")  # fmt: skip


def throttled() -> QboFault:
    return QboFault("3001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                    "The request limit was reached.  Try again later", status=429, fault_type="SERVICE")  # fmt: skip


def system_error() -> QboFault:
    return QboFault("10000", "An application error has occurred while processing your request",
                    "System Failure Error: An unexpected error occurred while accessing or saving your data.",
                    status=500, fault_type="SystemFault")  # fmt: skip


def not_found(entity: str, entity_id: str) -> QboFault:
    return QboFault("610", "Object Not Found",
                    f"Object Not Found : Something you're trying to use has been made inactive. Check the fields "
                    f"with accounts, customers, items, vendors or employees. ({entity} Id={entity_id})")  # fmt: skip


def stale_object() -> QboFault:
    return QboFault("5010", "Stale Object Error",
                    "Stale Object Error : You and API were working on this at the same time. "
                    "API finished before you did, so your work was not saved.")  # fmt: skip


def duplicate_name(entity: str, name: str) -> QboFault:
    owner = "product or service" if entity == "Item" else "customer, vendor or employee"
    return QboFault("6240", "Duplicate Name Exists Error",
                    f"The name supplied already exists. : Another {owner} is already using this name. "
                    f"Please use a different name. Name={name}")  # fmt: skip


def duplicate_doc_number(doc_number: str, entity: str, entity_id: str) -> QboFault:
    return QboFault("6140", "Duplicate Document Number Error",
                    f"Duplicate Document Number Error : You must specify a different number. This number has "
                    f"already been used. DocNumber={doc_number} is assigned to TxnType={entity} "
                    f"with TxnId={entity_id}")  # fmt: skip


def required(field: str) -> QboFault:
    return QboFault("2020", "Required param missing, need to supply the required value for the API",
                    f"Required parameter {field} is missing in the request", element=field)  # fmt: skip


def invalid(field: str, detail: str) -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property", f"Property Name:{field} {detail}",
                    element=field)  # fmt: skip


def business_rule(detail: str) -> QboFault:
    return QboFault("6000", "A business validation error has occurred while processing your request",
                    f"Business Validation Error: {detail}")  # fmt: skip


def amount_mismatch(amount: Decimal) -> QboFault:
    return QboFault("6070", "Amount calculation incorrect in the request",
                    f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}")  # fmt: skip


def no_name() -> QboFault:
    return QboFault(
        "6080",
        "No Name Provided",
        "Title, GivenName, MiddleName, FamilyName, DisplayName, Suffix - one of these must be non-empty",
    )


def unsupported(operation: str, entity: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", f"Operation {operation} is not supported for {entity}.")


def query_parse_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QboFault:
    return QboFault("4001", "Invalid query", f"QueryValidationError: {detail}")
