"""The hub's target policy (where connectors may point), built from settings.

``connectors.policy.TargetPolicy`` is plain Python; this module only hands it the settings' values
and the hub's own files. Read at every use (cached per distinct settings), so a test that overrides
a setting sees its effect at once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings

from connectors.policy import TargetPolicy

_SQLITE_ENGINE = "django.db.backends.sqlite3"


def protected_paths() -> list[str]:
    """The hub's database files (the test database too, while tests run) and its key and secret files."""
    paths = [str(path) for path in getattr(settings, "HUB_PROTECTED_PATHS", [])]
    for database in settings.DATABASES.values():
        if database.get("ENGINE") == _SQLITE_ENGINE:
            paths += [str(database.get("NAME") or ""), str((database.get("TEST") or {}).get("NAME") or "")]
    return [path for path in paths if path and path != ":memory:"]


def target_policy() -> TargetPolicy:
    return _build(
        bool(settings.HUB_ALLOW_LOOPBACK_TARGETS),
        tuple(settings.HUB_ALLOWED_TARGETS),
        tuple(settings.HUB_BLOCKED_TARGETS),
        tuple(str(folder) for folder in settings.SQLITE_ALLOWED_DIRS),
        tuple(protected_paths()),
    )


@lru_cache(maxsize=8)
def _build(*values: Any) -> TargetPolicy:
    allow_loopback, allowed, blocked, sqlite_dirs, protected = values
    return TargetPolicy.build(
        allow_loopback=allow_loopback,
        allowed=allowed,
        blocked=blocked,
        sqlite_dirs=sqlite_dirs,
        protected_paths=protected,
    )
