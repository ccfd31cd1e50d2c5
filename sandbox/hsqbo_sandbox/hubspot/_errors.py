"""HubSpot's error answers: one exception carrying the HTTP status and the SPEC `Error` fields.

Body shape (SPEC `Error`; ERR): `{"status": "error", "message", "correlationId", "category", "subCategory"?,
"context"?, "errors"?: [{"message", "in"?, "code"?, ...}]}`. Batch results carry the same facts as SPEC
`StandardError` (`status, category, message, context, errors, links`, all required there).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

Json = dict[str, Any]


class HubSpotError(Exception):
    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        sub_category: str | None = None,
        context: dict[str, list[str]] | None = None,
        errors: list[Json] | None = None,
        links: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub_category = sub_category
        self.context = context
        self.errors = errors
        self.links = links

    def body(self) -> Json:
        body: Json = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category is not None:
            body["subCategory"] = self.sub_category
        if self.context is not None:
            body["context"] = self.context
        if self.errors is not None:
            body["errors"] = self.errors
        if self.links is not None:
            body["links"] = self.links
        return body

    def standard_error(self) -> Json:
        """The SPEC `StandardError` form used inside batch answers."""
        standard: Json = {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context or {},
            "errors": self.errors or [],
            "links": {},
        }
        if self.sub_category is not None:
            standard["subCategory"] = self.sub_category
        return standard


def validation_error(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, **kwargs)


def not_found(message: str = "resource not found", **kwargs: Any) -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", message, **kwargs)


def invalid_property_values(issues: list[Json]) -> HubSpotError:
    """400 for unknown properties and bad values: HubSpot embeds the issue list as JSON in the message [3P]."""
    return validation_error(
        "Property values were not valid: " + orjson.dumps(issues).decode(),
        errors=[
            {"message": issue["message"], "code": issue["error"], "context": {"propertyName": [issue["name"]]}}
            for issue in issues
        ],
    )
