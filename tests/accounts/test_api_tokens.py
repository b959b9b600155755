"""API tokens are stored hashed and expire; `manage.py create_api_token`; old DRF tokens are migrated."""

from __future__ import annotations

import datetime as dt
import secrets
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.accounts.conftest import dump_database

pytestmark = pytest.mark.usefixtures("fresh_addresses")


def create_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def api_status(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/integrations").status_code


def test_the_command_prints_the_token_once_alone_on_the_last_line_and_it_works(alice: User) -> None:
    out, err = create_token("alice", "--expires-days", "7")
    token = out.strip().splitlines()[-1]
    assert out.strip() == token and token.startswith("hubut_") and " " not in token
    assert token not in err and "expires" in err
    assert api_status(token) == 200
    row = AuthToken.objects.get(user=alice)
    assert dt.timedelta(days=6, hours=23) < row.expiry - timezone.now() <= dt.timedelta(days=7)
    assert api_status(token[:-1] + ("0" if token[-1] != "0" else "1")) == 401  # one character off


def test_the_command_refuses_an_unknown_user_in_one_line(db: Any) -> None:
    with pytest.raises(CommandError) as refused:
        create_token("nobody")
    assert str(refused.value) == "no such user: nobody"
    with pytest.raises(CommandError, match="at least 1"):
        create_token("nobody", "--expires-days", "0")


def test_api_tokens_are_not_findable_in_the_database_by_their_value(alice: User, bob: User) -> None:
    new = create_token("alice")[0].strip()
    _row, other = AuthToken.objects.create(bob)
    assert api_status(new) == 200 and api_status(other) == 200  # used: last-use bookkeeping is written too
    dump = dump_database()
    assert "alice" in dump and "knox_authtoken" in dump  # the dump does see the tables and the users
    for token in (new, other):
        assert token not in dump
        assert token.removeprefix("hubut_") not in dump


def test_an_expired_token_is_refused_with_401(alice: User) -> None:
    token = create_token("alice", "--expires-days", "1")[0].strip()
    assert api_status(token) == 200
    AuthToken.objects.filter(user=alice).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get("/api/integrations")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_a_header_that_is_not_utf8_is_a_401_not_a_500(alice: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token caf\xe9")
    assert client.get("/api/integrations").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_an_old_drf_token_still_works_after_the_migration_and_only_its_hash_is_kept() -> None:
    """A database from before the change: DRF's authtoken_token table holds a raw 40-hex key."""
    user = User.objects.create_user("legacy", password="pw-legacy-123")
    old_key = secrets.token_hex(20)
    qn = connection.ops.quote_name
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", None)])  # as before this change (the migration only moves rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {qn('authtoken_token')} ({qn('key')} varchar(40) NOT NULL PRIMARY KEY, "
            f"{qn('created')} varchar(40) NOT NULL, {qn('user_id')} integer NOT NULL)"
        )
        cursor.execute(
            f"INSERT INTO {qn('authtoken_token')} ({qn('key')}, {qn('created')}, {qn('user_id')}) VALUES (%s, %s, %s)",
            [old_key, "2025-01-01 00:00:00", user.pk],
        )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([("accounts", "0001_hash_drf_tokens")])
        assert api_status(old_key) == 200
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {qn('authtoken_token')}")
            assert cursor.fetchone()[0] == 0
        assert old_key not in dump_database()
        migrated = AuthToken.objects.get(user=user)
        assert migrated.expiry is not None and migrated.expiry > timezone.now() + dt.timedelta(days=80)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {qn('authtoken_token')}")


def test_the_admin_lists_tokens_without_their_value_and_deleting_one_revokes_it(alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_superuser=True)
    token = create_token("alice")[0].strip()
    row = AuthToken.objects.get(user=alice)
    admin = Client()
    admin.force_login(alice)
    listing = admin.get("/admin/knox/authtoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert row.token_key in page and "alice" in page and "active" in page
    assert token not in page and token.removeprefix("hubut_") not in page  # (the digest, a SHA-512, is its URL)
    assert admin.get("/admin/knox/authtoken/add/").status_code == 403  # created by the command only
    detail = admin.get(f"/admin/knox/authtoken/{row.pk}/change/")
    assert detail.status_code == 200 and token not in detail.content.decode()
    deleted = admin.post(f"/admin/knox/authtoken/{row.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert api_status(token) == 401
