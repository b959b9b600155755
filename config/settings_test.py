"""Test overrides: a few lines on top of the real settings (DATABASE_URL picks the backend)."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("CREDENTIALS_KEY", "test-credentials-key-0123456789-abcdefghijklmnop")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Each concurrent test run (developers, CI) may name its own test database; processes started by
# end-to-end tests (workers, the ASGI server) are pointed at the same name.
_test_name = os.environ.get("HUB_TEST_DB_NAME")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    _test_name = _test_name or str(DATA_DIR / "test_hub.sqlite3")  # noqa: F405
    if not _test_name.startswith("/"):
        _test_name = str(DATA_DIR / f"{_test_name}.sqlite3")  # noqa: F405
DATABASES["default"]["TEST"] = {"NAME": _test_name or "test_hub"}  # noqa: F405
