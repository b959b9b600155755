"""Target policies for tests whose outside systems are faithful servers on loopback.

A connector's runtime refuses loopback and every SQLite file unless given a wider policy; these
tests say explicitly that they reach servers on this machine (and SQLite files in their tmp_path).
"""

from __future__ import annotations

from pathlib import Path

from connectors.policy import TargetPolicy

LOOPBACK = TargetPolicy(allow_loopback=True)


def local(sqlite_dir: Path | str | None = None) -> TargetPolicy:
    """Loopback servers allowed, and SQLite files inside ``sqlite_dir``."""
    return TargetPolicy.build(allow_loopback=True, sqlite_dirs=[str(sqlite_dir)] if sqlite_dir else [])
