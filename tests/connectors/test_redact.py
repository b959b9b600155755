"""Credentials are masked in error texts as whole tokens only: no oracle, no echo (issue 14, item 8)."""

from __future__ import annotations

import os
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from connectors import build
from connectors.errors import ConnectorError
from connectors.metrics import MemoryMetrics
from connectors.redact import mask_secrets
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime
from tests.connectors.policies import LOOPBACK


def test_a_one_letter_password_does_not_mask_letters_inside_words() -> None:
    text = "connection to database failed: password authentication failed"
    assert mask_secrets(text, ["a"]) == text
    assert mask_secrets("the password was a, try again", ["a"]) == "the password was ***, try again"


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        ("Sup3r-Secret-pw", "login failed (password 'Sup3r-Secret-pw')", "login failed (password '***')"),
        ("p@ss", "postgres://hub:p@ss@db.example.com/hr", "postgres://hub:***@db.example.com/hr"),
        ("!pa55&", "password=!pa55& rejected", "password=*** rejected"),
        ("!pa55&", "x!pa55&y", "x***y"),  # punctuation at the edges: no word boundary to ask for
        ("tok", "token tok expired", "token *** expired"),
        ("tok", "tokens expire", "tokens expire"),
        ("a.b", "axb a.b", "axb ***"),  # a dot in a secret is a dot, not "any character"
    ],
)
def test_whole_token_masking(secret: str, text: str, expected: str) -> None:
    assert mask_secrets(text, [secret]) == expected


def test_longer_secret_wins_over_one_it_contains() -> None:
    assert mask_secrets("key abc-def used", ["abc", "abc-def"]) == "key *** used"


def test_non_strings_and_empty_values_are_ignored() -> None:
    assert mask_secrets("nothing to hide", [None, "", 12]) == "nothing to hide"


def _postgres(credentials: dict[str, str], **overrides: Any) -> Any:
    url = urlsplit(os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test"))
    config = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "database": url.path.lstrip("/") or "test",
        "username": url.username or "postgres",
    } | overrides
    runtime = Runtime(
        key=f"redact-{uuid.uuid4().hex[:8]}",
        metrics=MemoryMetrics(),
        retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.05),
        policy=LOOPBACK,
    )
    return build("postgresql", config, credentials, runtime, auth_type="basic")


def _connect_error(connector: Any) -> str:
    try:
        connector.connect()
    except ConnectorError as exc:
        return exc.message
    finally:
        connector.disconnect()
    raise AssertionError("connect() should have failed")


def test_a_real_driver_message_keeps_its_words_with_a_one_letter_password() -> None:
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    message = _connect_error(_postgres({"password": "a"}, username=role))
    assert role in message and "***" not in message, message


def test_a_secret_in_a_real_driver_message_is_masked() -> None:
    # A password pasted into the database field: PostgreSQL names the database in its refusal.
    secret = f"Sup3r-{uuid.uuid4().hex[:8]}"
    message = _connect_error(_postgres({"password": secret}, database=secret))
    assert secret not in message and "***" in message, message
