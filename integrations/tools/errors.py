"""The one error a tool raises, and the envelope every call returns."""

from __future__ import annotations

from typing import Any

from connectors.errors import Category, ConnectorError

# Categories the agent can fix by changing its call, never by waiting.
_PERMANENT = {"invalid", "permission", "not_found", "conflict", "config", "auth"}

# REST status per category (the body is the same envelope whatever the status).
HTTP_STATUS = {
    "invalid": 400,
    "permission": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unavailable": 503,
    "timeout": 504,
    # The outside system failed (or refused our credentials): not the caller's fault.
    "auth": 502,
    "network": 502,
    "config": 502,
    "unknown": 502,
}


class ToolError(Exception):
    def __init__(self, category: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.retry_after = retry_after

    @classmethod
    def from_connector(cls, exc: ConnectorError) -> ToolError:
        category = exc.category.value
        if exc.category == Category.UNKNOWN and exc.status_code is None:
            category = "unknown"
        return cls(category, exc.message, retry_after=exc.retry_after)

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "message": self.message,
            "retry_after": None if self.retry_after is None else round(float(self.retry_after), 1),
            "permanent": self.category in _PERMANENT,
        }

    def envelope(self, call_id: int | None = None) -> dict[str, Any]:
        return {"ok": False, "error": self.as_dict(), "call_id": call_id}
