"""`manage.py rotate_credentials_key`: every stored credential moves from the old key to CREDENTIALS_KEY."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from integrations.crypto import CredentialsUnreadable, decrypt_value, encrypt_value
from integrations.models import Integration
from tests.integrations.support import OLD_KEY, WRONG_KEY, child_env, manage, raw_credentials

pytestmark = pytest.mark.django_db(transaction=True)  # the command commits batch by batch

ROWS = 200


def secret(i: int) -> dict[str, str]:
    return {"password": f"pw-{i:03d}-rotation", "api_key": f"key-{i:03d}"}


@pytest.fixture
def old_rows(settings) -> dict[str, bytes | None]:
    """200 integrations whose credentials are under OLD_KEY, plus one with none; returns the raw ciphertext."""
    new_key = settings.CREDENTIALS_KEY
    settings.CREDENTIALS_KEY = OLD_KEY
    Integration.objects.bulk_create(
        [
            Integration(id=f"cred_{i:03d}", name=f"Integration {i}", kind="sqlite", credentials=secret(i))
            for i in range(ROWS)
        ]
        + [Integration(id="empty_one", name="No secrets", kind="sqlite", credentials=None)]
    )
    settings.CREDENTIALS_KEY = new_key
    return raw_credentials()


def run(*args: str, **options) -> str:
    out = StringIO()
    call_command("rotate_credentials_key", *args, stdout=out, **options)
    return out.getvalue()


def readable_with(key: str, token: bytes | None) -> bool:
    try:
        decrypt_value(token, key)
    except CredentialsUnreadable:
        return False
    return True


@pytest.fixture
def fail_update_of() -> Iterator[callable]:
    """A database trigger that makes the UPDATE of one row fail: a crash part-way through a rotation."""
    created: list[str] = []

    def install(row_id: str) -> None:
        table = "integrations_integration"
        statements = {
            "sqlite": [
                f"CREATE TRIGGER hub_test_fail BEFORE UPDATE ON {table} WHEN OLD.id = '{row_id}' "
                "BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
            ],
            "postgresql": [
                "CREATE FUNCTION hub_test_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'simulated crash'; END $$ "
                "LANGUAGE plpgsql",
                f"CREATE TRIGGER hub_test_fail BEFORE UPDATE ON {table} FOR EACH ROW WHEN (OLD.id = '{row_id}') "
                "EXECUTE FUNCTION hub_test_fail()",
            ],
            "mysql": [
                f"CREATE TRIGGER hub_test_fail BEFORE UPDATE ON {table} FOR EACH ROW BEGIN IF OLD.id = '{row_id}' "
                "THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'simulated crash'; END IF; END"
            ],
        }[connection.vendor]
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        created.append(row_id)

    def remove() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS hub_test_fail ON integrations_integration"
                if connection.vendor == "postgresql"
                else "DROP TRIGGER IF EXISTS hub_test_fail"
            )
            if connection.vendor == "postgresql":
                cursor.execute("DROP FUNCTION IF EXISTS hub_test_fail()")

    install.remove = remove  # type: ignore[attr-defined]
    yield install
    remove()


def test_interrupted_rotation_resumes_and_every_credential_is_readable_with_the_new_key(old_rows, fail_update_of):
    new_key = settings.CREDENTIALS_KEY
    fail_update_of("cred_137")  # batch 6 of 25 rows (cred_125..cred_149) fails

    with pytest.raises(CommandError) as crash:
        run(old_key=OLD_KEY, batch_size=25)
    assert "stopped after re-encrypting 125 stored credentials" in str(crash.value)
    assert "run the command again" in str(crash.value)

    after_crash = raw_credentials()
    for i in range(ROWS):
        pk = f"cred_{i:03d}"
        if i < 125:  # committed batches: new key only
            assert readable_with(new_key, after_crash[pk]) and not readable_with(OLD_KEY, after_crash[pk])
        else:  # the failed batch rolled back, later ones untouched: byte for byte as before
            assert after_crash[pk] == old_rows[pk]

    fail_update_of.remove()
    output = run(old_key=OLD_KEY, batch_size=25)
    assert "Re-encrypted 75 of 201 stored credentials (125 already under the new key, 1 empty)." in output

    # The hub reads them with CREDENTIALS_KEY alone, no fallback.
    assert settings.CREDENTIALS_KEY_FALLBACKS == []
    stored = {i.id: i.credentials for i in Integration.objects.all()}
    assert stored == {**{f"cred_{i:03d}": secret(i) for i in range(ROWS)}, "empty_one": None}
    assert all(not readable_with(OLD_KEY, token) for token in raw_credentials().values() if token is not None)

    again = run(old_key=OLD_KEY)
    assert "Re-encrypted 0 of 201 stored credentials (200 already under the new key, 1 empty)." in again


def test_wrong_old_key_exits_non_zero_and_changes_nothing(old_rows):
    result = manage("rotate_credentials_key", env=child_env(OLD_CREDENTIALS_KEY=WRONG_KEY))
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "200 of 201 stored credentials cannot be decrypted with the old key or with CREDENTIALS_KEY" in result.stderr
    assert "nothing was changed" in result.stderr
    assert raw_credentials() == old_rows


def test_one_unreadable_row_blocks_the_whole_rotation(old_rows, settings):
    # Half already rotated, one under a third key: the readable rows are not touched either.
    run(old_key=OLD_KEY, batch_size=10)
    half_done = {pk: token for pk, token in raw_credentials().items()}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_integration SET credentials = %s WHERE id = %s",
            [connection.Database.Binary(encrypt_value({"password": "x"}, WRONG_KEY)), "cred_042"],
        )
    before = raw_credentials()
    assert before["cred_041"] == half_done["cred_041"]
    result = manage("rotate_credentials_key", "--old-key", OLD_KEY, env=child_env())
    assert result.returncode != 0, result.stdout + result.stderr
    assert "1 of 201 stored credentials cannot be decrypted" in result.stderr, result.stderr
    after = raw_credentials()
    assert [pk for pk in before if after[pk] != before[pk]] == []


def test_dry_run_counts_and_writes_nothing(old_rows):
    output = run("--dry-run", old_key=OLD_KEY)
    assert (
        "Dry run: 200 of 201 stored credentials would be re-encrypted (0 already under the new key, 1 empty)" in output
    )
    assert raw_credentials() == old_rows


def test_old_key_from_the_environment_in_a_child_process(old_rows):
    result = manage("rotate_credentials_key", "--batch-size", "64", env=child_env(OLD_CREDENTIALS_KEY=OLD_KEY))
    assert result.returncode == 0, result.stderr
    assert "Re-encrypted 200 of 201 stored credentials (0 already under the new key, 1 empty)." in result.stdout
    assert Integration.objects.get(pk="cred_199").credentials == secret(199)


def test_fallback_keys_keep_the_hub_reading_during_a_rotation(old_rows, settings):
    with pytest.raises(CredentialsUnreadable):
        Integration.objects.get(pk="cred_001")
    settings.CREDENTIALS_KEY_FALLBACKS = [OLD_KEY]
    assert Integration.objects.get(pk="cred_001").credentials == secret(1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "give the old key with --old-key or the OLD_CREDENTIALS_KEY environment variable"),
        ({"old_key": "same"}, "the old key is the same as CREDENTIALS_KEY"),
        ({"old_key": OLD_KEY, "batch_size": 0}, "--batch-size must be at least 1"),
    ],
)
def test_refuses_incomplete_arguments(old_rows, monkeypatch, args, message):
    monkeypatch.delenv("OLD_CREDENTIALS_KEY", raising=False)
    if args.get("old_key") == "same":
        args = {"old_key": settings.CREDENTIALS_KEY}
    with pytest.raises(CommandError, match=message):
        run(**args)
    assert raw_credentials() == old_rows
