"""Test overrides: a few lines on top of the real settings (DATABASE_URL picks the backend)."""

import getpass
import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("CREDENTIALS_KEY", "test-credentials-key-0123456789-abcdefghijklmnop")
# Many tests present a wrong token on purpose, all from 127.0.0.1, and the failure counter lives in Redis
# for 15 minutes: tests/accounts/test_token_throttle.py lowers the limit where the throttle is the subject.
os.environ.setdefault("TOKEN_FAILURE_LIMIT", "100000")
# Django's test client is served as http://testserver: the OAuth2 redirect URI the test provider knows.
os.environ.setdefault("HUB_PUBLIC_URL", "http://testserver")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests make their SQLite files in pytest's tmp_path (under the temp folder's pytest-of-<user>).
SQLITE_ALLOWED_DIRS = [*SQLITE_ALLOWED_DIRS, str(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}")]  # noqa: F405

# Each concurrent test run (developers, CI) may name its own test database; processes started by
# end-to-end tests (workers, the ASGI server) are pointed at the same name.
_test_name = os.environ.get("HUB_TEST_DB_NAME")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    _test_name = _test_name or str(DATA_DIR / "test_hub.sqlite3")  # noqa: F405
    if not _test_name.startswith("/"):
        _test_name = str(DATA_DIR / f"{_test_name}.sqlite3")  # noqa: F405
DATABASES["default"]["TEST"] = {"NAME": _test_name or "test_hub"}  # noqa: F405

# Each test run journals tool calls made while its database is down in a folder of its own.
TOOLS_OUTBOX_DIR = os.environ.get("TOOLS_OUTBOX_DIR") or str(
    DATA_DIR / f"outbox-{Path(str(DATABASES['default']['TEST']['NAME'])).name}"  # noqa: F405
)
