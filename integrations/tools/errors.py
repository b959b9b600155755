"""The one error a tool raises, and the envelope every call returns.

Its categories are the connectors' (``connectors.errors.Category``), and so is what makes one permanent:
an agent reads the same words whatever failed, the tool's checks or the outside system.
"""

from __future__ import annotations

from typing import Any

from connectors.errors import PERMANENT_CATEGORIES, Category, ConnectorError


class ToolError(Exception):
    def __init__(self, category: Category | str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.category = Category(category)
        self.message = message
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        """The agent can fix it by changing its call, never by waiting."""
        return self.category in PERMANENT_CATEGORIES

    @classmethod
    def from_connector(cls, exc: ConnectorError) -> ToolError:
        return cls(exc.category, exc.message, retry_after=exc.retry_after)

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "message": self.message,
            "retry_after": None if self.retry_after is None else round(float(self.retry_after), 1),
            "permanent": self.permanent,
        }

    def envelope(self, call_id: int | None = None) -> dict[str, Any]:
        return {"ok": False, "error": self.as_dict(), "call_id": call_id}
