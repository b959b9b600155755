"""Reading the hub's SQLite files from inside a test process, safely.

Closing ANY file descriptor on a database file drops every POSIX lock the process holds on it,
including those of SQLite connections still open in this process (some live in other contexts, e.g.
the greenlet Playwright's sync API runs test code in, where ``connections.close_all()`` does not reach).
A child process (manage.py, a worker) then believes it is the last user and unlinks the -wal/-shm
under those connections: "disk I/O error" and short reads follow. So the files are read by a child
process (``cat``), whose open and close touch only its own (absent) locks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from django.db import connection


def sqlite_file_bytes() -> dict[str, bytes]:
    """The main file and write-ahead log by name; empty when the hub's database is not SQLite."""
    if connection.vendor != "sqlite":
        return {}
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(FULL)")
    name = Path(connection.settings_dict["NAME"])
    return {
        path.name: subprocess.run(["cat", str(path)], capture_output=True, check=True).stdout
        for path in (name, Path(f"{name}-wal"))
        if path.exists()
    }
