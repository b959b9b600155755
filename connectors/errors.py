"""The one error type connectors raise."""

from __future__ import annotations

import math
from enum import StrEnum


class Category(StrEnum):
    NETWORK = "network"
    TIMEOUT = "timeout"
    AUTH = "auth"
    PERMISSION = "permission"
    RATE_LIMITED = "rate_limited"
    CONFIG = "config"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"  # bad input: SQL syntax, unknown column, malformed value
    UNAVAILABLE = "unavailable"  # circuit open: fail fast, retry later
    QUOTA_EXCEEDED = "quota_exceeded"  # an agent profile's quota is spent: retry after the window resets
    UNKNOWN = "unknown"


# Categories that no retry can fix unless told otherwise (the agent tools' errors use the same set).
PERMANENT_CATEGORIES = frozenset(
    {
        Category.AUTH,
        Category.PERMISSION,
        Category.CONFIG,
        Category.NOT_FOUND,
        Category.CONFLICT,
        Category.INVALID,
    }
)


def wait_seconds(seconds: float) -> int:
    """A wait as a caller is told it (a Retry-After header, a message): whole seconds, rounded up, at
    least 1. A refusal in the last milliseconds of a cool-down never says "retry after 0 s"."""
    return max(1, math.ceil(seconds))


class ConnectorError(Exception):
    """A failure talking to an outside system.

    ``permanent``: retrying the same call cannot help. ``retry_after``: seconds after which a retry
    may succeed (from a provider's Retry-After, a rate limiter or an open circuit). The message must
    never contain a secret: connectors build it from their own words and the provider's error text.
    """

    def __init__(
        self,
        message: str,
        *,
        category: Category | str = Category.UNKNOWN,
        permanent: bool | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = Category(category)
        self.permanent = self.category in PERMANENT_CATEGORIES if permanent is None else permanent
        self.retry_after = retry_after
        self.status_code = status_code

    def __repr__(self) -> str:
        return (
            f"ConnectorError({self.message!r}, category={self.category.value!r}, "
            f"permanent={self.permanent}, retry_after={self.retry_after})"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.category.value,
            "message": self.message,
            "permanent": self.permanent,
            "retry_after": self.retry_after,
        }


class ConfigError(ConnectorError):
    """Config or credentials that do not fit the kind's schema; ``errors`` maps field -> messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message, category=Category.CONFIG, permanent=True)
        self.errors = errors or {}
