"""Test overrides: a few lines on top of the real settings (DATABASE_URL picks the backend)."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("CREDENTIALS_KEY", "test-credentials-key-0123456789-abcdefghijklmnop")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
