"""Typed readers for the environment. Every bad value stops start-up with one clear line."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, overload

from django.core.exceptions import ImproperlyConfigured

from connectors.policy import TargetRule

if TYPE_CHECKING:
    from dj_database_url import DBConfig

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false/1/0), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_targets(name: str) -> list[str]:
    """Comma-separated CIDR networks or host:port targets (HUB_ALLOWED_TARGETS, HUB_BLOCKED_TARGETS)."""
    entries = env_list(name, [])
    for entry in entries:
        try:
            TargetRule.parse(entry)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None
    return entries


# The database servers the hub is tested on; other Django backends are refused rather than half-supported.
_DB_ENGINES = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.mysql": "mysql",
}
_DB_EXAMPLES = (
    "sqlite:////path/to/hub.sqlite3, postgres://user:password@host:5432/name or mysql://user:password@host:3306/name"
)


def env_database(name: str, default: str) -> DBConfig:
    """Parse DATABASE_URL with dj-database-url into one readable line on failure.

    Messages name the scheme at most, never the URL itself: it may carry a password.
    """
    import dj_database_url

    raw = (os.environ.get(name) or "").strip() or default
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if not scheme:
        raise ImproperlyConfigured(f"{name} is not a database URL; expected e.g. {_DB_EXAMPLES}")
    try:
        config = dj_database_url.parse(raw, conn_max_age=0)
    except Exception as exc:  # dj-database-url raises a mix of ValueError/KeyError/TypeError
        if "unknown" in str(exc).lower() and "scheme" in str(exc).lower():
            reason = f"has an unsupported scheme {scheme!r}"
        else:
            reason = f"cannot be parsed ({type(exc).__name__}; check the port and quote special characters)"
        raise ImproperlyConfigured(f"{name} {reason}; expected e.g. {_DB_EXAMPLES}") from None
    if config.get("ENGINE") not in _DB_ENGINES:
        raise ImproperlyConfigured(
            f"{name} has an unsupported scheme {scheme!r}: the hub runs on SQLite, PostgreSQL or MySQL/MariaDB"
        )
    db_name = str(config.get("NAME") or "")
    if config["ENGINE"].endswith("sqlite3") and db_name in ("", ":memory:"):
        # web, worker and beat are separate processes: an in-memory database would not be shared.
        raise ImproperlyConfigured(f"{name} must name a SQLite file, e.g. sqlite:////path/to/hub.sqlite3")
    if not db_name:
        raise ImproperlyConfigured(f"{name} names no database; expected e.g. {_DB_EXAMPLES}")
    return config
