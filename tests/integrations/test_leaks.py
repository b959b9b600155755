"""A known secret, stored through the admin and through the ORM, must show up nowhere but in memory."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.forms import integration_form_class
from integrations.models import Integration, IntegrationEvent
from tests.sqlite_files import sqlite_file_bytes

ADMIN_SECRET = "Adm1n-Plaintext-Secret-7f3a9c"
CHANGED_SECRET = "Chang3d-Plaintext-Secret-1b2e4d"
REJECTED_SECRET = "Rej3cted-Plaintext-Secret-c0ffee"
ORM_API_KEY = "0rmapikey0123456789abcdef0123456789abcd"
ORM_CLIENT_SECRET = "Orm-Client-Secret-Plaintext-55aa"
SECRETS = [ADMIN_SECRET, CHANGED_SECRET, REJECTED_SECRET, ORM_API_KEY, ORM_CLIENT_SECRET]


def leaked_in(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        return [s for s in SECRETS if s.encode() in text]
    return [s for s in SECRETS if s in text]


def dump_all_tables() -> bytes:
    """Every value of every table of the hub's database, as the database returns it."""
    qn = connection.ops.quote_name
    chunks: list[bytes] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {qn(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        chunks.append(bytes(value))
                    else:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def database_file_bytes() -> bytes:
    """On SQLite, the files themselves (main file and write-ahead log)."""
    return b"".join(sqlite_file_bytes().values())


def redis_bytes(redis_url: str) -> bytes:
    import redis

    client = redis.Redis.from_url(redis_url)
    chunks: list[bytes] = []
    try:
        for key in client.scan_iter():
            kind = client.type(key)
            if kind == b"string":
                chunks.append(client.get(key) or b"")
            elif kind == b"list":
                chunks.extend(client.lrange(key, 0, -1))
            elif kind == b"hash":
                chunks.extend(k + v for k, v in client.hgetall(key).items())
            elif kind == b"zset":
                chunks.extend(member for member, _score in client.zrange(key, 0, -1, withscores=True))
            elif kind == b"set":
                chunks.extend(client.smembers(key))
            elif kind == b"stream":
                chunks.extend(repr(entry).encode() for entry in client.xrange(key))
    finally:
        client.close()
    return b"\n".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_plaintext_secrets_appear_nowhere(admin_client, caplog, clean_redis, redis_url):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")  # Django's own default is INFO
    with CaptureQueriesContext(connection) as queries:  # also makes django.db.backends log every query
        # Through the admin: create, change the secret, and a rejected change that carried a new secret.
        response = admin_client.post(
            reverse("admin:integrations_integration_add") + "?kind=postgresql",
            {
                "kind": "postgresql",
                "id": "db_admin",
                "name": "Via admin",
                "auth_type": "basic",
                "enabled": "on",
                "health_check_interval": "60",
                "config": '{"host": "127.0.0.1", "database": "test"}',
                "credential__password": ADMIN_SECRET,
                "_save": "Save",
            },
        )
        assert response.status_code == 302
        change = reverse("admin:integrations_integration_change", args=["db_admin"])
        base = {
            "name": "Via admin",
            "auth_type": "basic",
            "enabled": "on",
            "health_check_interval": "60",
            "config": '{"host": "127.0.0.1", "database": "test"}',
            "_save": "Save",
        }
        assert admin_client.post(change, {**base, "credential__password": CHANGED_SECRET}).status_code == 302
        rejected = admin_client.post(change, {**base, "config": "{broken", "credential__password": REJECTED_SECRET})
        assert rejected.status_code == 200
        # Through the ORM.
        Integration.objects.create(
            id="bamboo_orm",
            name="Via ORM",
            kind="bamboohr",
            auth_type="oauth2",
            config={"subdomain": "acme"},
            credentials={"api_key": ORM_API_KEY, "client_secret": ORM_CLIENT_SECRET},
        )
        pages = [rejected.content]
        for url in (
            reverse("admin:integrations_integration_changelist"),
            change,
            reverse("admin:integrations_integration_change", args=["bamboo_orm"]),
            reverse("admin:integrations_integration_history", args=["db_admin"]),
            reverse("admin:integrations_integrationevent_changelist"),
            reverse("admin:index"),
        ):
            page = admin_client.get(url)
            assert page.status_code == 200, url
            pages.append(page.content)

    # The secrets really are stored (the test would be empty otherwise)...
    assert Integration.objects.get(pk="db_admin").credentials == {"password": CHANGED_SECRET}
    assert Integration.objects.get(pk="bamboo_orm").credentials["client_secret"] == ORM_CLIENT_SECRET

    # ...and are nowhere else.
    assert leaked_in(dump_all_tables()) == []
    assert leaked_in(database_file_bytes()) == []
    for page in pages:
        assert leaked_in(page) == []
    assert len(queries) > 0 and "integrations_integration" in caplog.text  # SQL logging was on
    assert leaked_in(caplog.text) == []
    assert leaked_in("\n".join(q["sql"] for q in queries.captured_queries)) == []
    dumped = StringIO()
    call_command("dumpdata", "integrations", stdout=dumped)
    # Credentials leave as ciphertext that loaddata can restore (issue 25), never as plaintext.
    assert leaked_in(dumped.getvalue()) == [] and '"credentials": "encrypted:' in dumped.getvalue()
    assert leaked_in(redis_bytes(redis_url)) == []

    objects = [*Integration.objects.all(), *IntegrationEvent.objects.all()]
    form = integration_form_class("postgresql")(instance=Integration.objects.get(pk="db_admin"))
    for obj in [*objects, form]:
        assert leaked_in(str(obj)) == [] and leaked_in(repr(obj)) == []
