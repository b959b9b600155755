"""The one error a tool raises, and the envelope every call returns.

Its categories are the connectors' (``connectors.errors.Category``), and so is what makes one permanent:
an agent reads the same words whatever failed, the tool's checks or the outside system.
"""

from __future__ import annotations

import math
from typing import Any

from connectors.errors import PERMANENT_CATEGORIES, Category, ConnectorError


def _tenths_up(seconds: float) -> float:
    """A wait in the envelope: rounded up to a tenth (a caller that waits it is never early) and at least
    1 s, like the Retry-After header: 0.04 s left of a cool-down is never sent as 0.0."""
    return max(1.0, math.ceil(round(seconds * 10, 6)) / 10)


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
            "retry_after": None if self.retry_after is None else _tenths_up(float(self.retry_after)),
            "permanent": self.permanent,
        }

    def envelope(self, call_id: int | None = None) -> dict[str, Any]:
        return {"ok": False, "error": self.as_dict(), "call_id": call_id}
