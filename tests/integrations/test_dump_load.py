"""dumpdata / loaddata keep every secret secret and intact, and refuse what would lose one (issue 25).

Runs on the hub's own test database (whatever backend the run uses). The move between backends, with
the README's commands in subprocesses, is ``test_move_database.py``.
"""

from __future__ import annotations

import io
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.test import Client, override_settings

from integrations.crypto import CredentialsUnreadable, decrypt_value
from integrations.models import Integration
from integrations.oauth import DjangoTokenStore
from integrations.stored_secrets import StoredSecretRefused

pytestmark = pytest.mark.django_db

OTHER_KEY = "another-hubs-credentials-key-" + "x" * 24
PASSWORD = "Porter-Password-" + secrets.token_hex(8)
DUMP_ARGS = ["--natural-foreign", "--exclude", "contenttypes", "--exclude", "auth.permission"]


def _secret(name: str) -> str:
    return f"{name}-{secrets.token_hex(12)}"


@pytest.fixture
def hub(settings: Any) -> dict[str, Any]:
    """A user, integrations with credentials (one with an OAuth token), an API token and an agent token."""
    settings.CREDENTIALS_KEY_FALLBACKS = []
    user = get_user_model().objects.create_user("porter", password=PASSWORD, is_staff=True)
    creds = {
        "pg": {"password": _secret("pg")},
        "bamboo": {"api_key": _secret("bamboo")},
        "oauthhr": {"client_secret": _secret("client")},
    }
    Integration.objects.create(
        id="pg",
        name="PG",
        kind="postgresql",
        auth_type="basic",
        config={"host": "db", "database": "hr"},
        credentials=creds["pg"],
        owner=user,
    )
    Integration.objects.create(
        id="bamboo",
        name="B",
        kind="bamboohr",
        auth_type="api_key",
        config={"subdomain": "acme"},
        credentials=creds["bamboo"],
        owner=user,
    )
    Integration.objects.create(
        id="oauthhr",
        name="O",
        kind="bamboohr",
        auth_type="oauth2",
        config={"subdomain": "acme"},
        credentials=creds["oauthhr"],
        owner=user,
    )
    Integration.objects.create(id="lite", name="L", kind="sqlite", auth_type="none", config={"path": "/tmp/x"})
    oauth_token = {"access_token": _secret("access"), "refresh_token": _secret("refresh"), "token_type": "Bearer"}
    DjangoTokenStore("oauthhr").save(oauth_token)
    creds["oauthhr"] = {**creds["oauthhr"], "oauth_token": oauth_token}
    out = io.StringIO()
    call_command("create_api_token", "porter", stdout=out, stderr=io.StringIO())
    api_token = out.getvalue().strip().splitlines()[-1]
    out = io.StringIO()
    call_command("create_agent_token", "agent", "-i", "pg", "-i", "bamboo", stdout=out, stderr=io.StringIO())
    agent_token = out.getvalue().strip().splitlines()[-1]
    plaintexts = [PASSWORD, api_token, agent_token, oauth_token["access_token"], oauth_token["refresh_token"]]
    plaintexts += [value for c in creds.values() for value in c.values() if isinstance(value, str)]
    return {"creds": creds, "api_token": api_token, "agent_token": agent_token, "plaintexts": plaintexts}


def dump(path: Path) -> list[dict[str, Any]]:
    call_command("dumpdata", *DUMP_ARGS, "--output", str(path), verbosity=0)
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data


def empty_hub() -> None:
    """What a fresh, migrated database holds: no user, integration or token."""
    tokens = [m for m in apps.get_models() if m._meta.object_name == "AgentToken"]
    profiles = [m for m in apps.get_models() if m._meta.object_name == "AgentProfile"]
    for model in (Integration, *tokens, *profiles):  # tokens before their profiles (which they protect)
        model.objects.all().delete()
    get_user_model().objects.all().delete()  # and with them their API tokens


def row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.managed}


def write(path: Path, data: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(data))
    return path


def authenticates(api_token: str, agent_token: str) -> tuple[int, int, bool]:
    client = Client()
    api = client.get("/api/integrations", HTTP_AUTHORIZATION=f"Token {api_token}").status_code
    agent = client.get("/api/tools/", HTTP_AUTHORIZATION=f"Bearer {agent_token}").status_code
    login = client.post("/accounts/login/", {"username": "porter", "password": PASSWORD})
    return api, agent, login.status_code == 302


def test_the_dump_carries_ciphertext_and_loaddata_restores_every_secret(hub, tmp_path):
    data = dump(tmp_path / "hub.json")
    text = (tmp_path / "hub.json").read_text()
    assert [s for s in hub["plaintexts"] if s in text] == []
    exported = {o["pk"]: o["fields"]["credentials"] for o in data if o["model"] == "integrations.integration"}
    assert exported["lite"] is None
    assert all(exported[i].startswith("encrypted:") for i in ("pg", "bamboo", "oauthhr"))
    assert "<encrypted>" not in text

    empty_hub()
    assert authenticates(hub["api_token"], hub["agent_token"]) == (401, 401, False)  # the check can fail
    call_command("loaddata", str(tmp_path / "hub.json"), verbosity=0)

    for pk, expected in hub["creds"].items():
        assert Integration.objects.get(pk=pk).credentials == expected
    assert Integration.objects.get(pk="lite").credentials is None
    assert DjangoTokenStore("oauthhr").load() == hub["creds"]["oauthhr"]["oauth_token"]
    assert authenticates(hub["api_token"], hub["agent_token"]) == (200, 200, True)


def test_a_dump_under_another_key_is_refused_and_loads_with_that_key_as_a_fallback(hub, tmp_path, settings):
    original = settings.CREDENTIALS_KEY
    with override_settings(CREDENTIALS_KEY=OTHER_KEY, CREDENTIALS_KEY_FALLBACKS=[original]):
        dump(tmp_path / "other.json")  # the same rows, exported by a hub whose key is OTHER_KEY
    empty_hub()
    before = row_counts()
    with pytest.raises(CommandError) as refused:
        call_command("loaddata", str(tmp_path / "other.json"), verbosity=0)
    message = str(refused.value)
    assert "3 stored secret(s)" in message and "nothing was loaded" in message
    for pk in ("pg", "bamboo", "oauthhr"):
        assert f"integrations.Integration '{pk}' credentials: encrypted under another CREDENTIALS_KEY" in message
    assert [s for s in hub["plaintexts"] if s in message] == []
    assert row_counts() == before

    with override_settings(CREDENTIALS_KEY_FALLBACKS=[OTHER_KEY]):
        call_command("loaddata", str(tmp_path / "other.json"), verbosity=0)
    assert Integration.objects.get(pk="pg").credentials == hub["creds"]["pg"]
    with connection.cursor() as cursor:  # stored under the current key: the fallback can go
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", ["bamboo"])
        stored = bytes(cursor.fetchone()[0])
    assert decrypt_value(stored, original) == hub["creds"]["bamboo"]
    with pytest.raises(CredentialsUnreadable):
        decrypt_value(stored, OTHER_KEY)


def tampered(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hand edits an operator (or an older dumpdata) could make, one per kind of stored secret."""
    data = json.loads(json.dumps(data))
    for obj in data:
        fields = obj["fields"]
        if obj["model"] == "integrations.integration" and obj["pk"] == "pg":
            fields["credentials"] = "<encrypted>"
        elif obj["model"] == "integrations.integration" and obj["pk"] == "bamboo":
            kid, _, b64 = fields["credentials"].removeprefix("encrypted:").partition(":")
            fields["credentials"] = f"encrypted:{kid}:{b64[:20]}{'A' if b64[20] != 'A' else 'B'}{b64[21:]}"
        elif obj["model"] == "integrations.integration" and obj["pk"] == "oauthhr":
            fields["credentials"] = {"client_secret": "typed-by-hand"}  # plain JSON (a hand-made fixture) is fine
        elif obj["model"].endswith(".agenttoken"):
            fields["token_hash"] = "<hashed>"
        elif obj["model"] == "knox.authtoken":
            obj["pk"] = "<hashed>"
        elif obj["model"] == "auth.user":
            fields["password"] = "<hashed>"
    return data


def test_placeholders_altered_ciphertext_and_fake_hashes_are_refused_with_nothing_written(hub, tmp_path):
    good = dump(tmp_path / "hub.json")
    bad = write(tmp_path / "bad.json", tampered(good))
    empty_hub()
    before = row_counts()
    with pytest.raises(CommandError) as refused:
        call_command("loaddata", str(bad), verbosity=0)
    message = str(refused.value)
    token_key = next(o["fields"]["token_key"] for o in good if o["model"] == "knox.authtoken")
    agent_pk = next(o["pk"] for o in good if o["model"].endswith(".agenttoken"))
    expected = [
        "integrations.Integration 'pg' credentials: the placeholder \"<encrypted>\" instead of ciphertext",
        "integrations.Integration 'bamboo' credentials: altered or truncated",
        f"AgentToken {agent_pk} token_hash: not a SHA-256 token hash",
        f"knox.AuthToken token '{token_key}'… digest: not a token digest",
        "auth.User 'porter' password: not a password hash",
    ]
    for line in expected:
        assert line in message
    assert "5 stored secret(s)" in message and "oauthhr" not in message
    assert [s for s in hub["plaintexts"] if s in message] == []
    assert row_counts() == before

    # The untouched dump still loads into the same database: the refusal left nothing behind.
    call_command("loaddata", str(tmp_path / "hub.json"), verbosity=0)
    assert authenticates(hub["api_token"], hub["agent_token"]) == (200, 200, True)


def test_any_import_through_the_serializers_refuses_the_same_values(hub, tmp_path):
    bad = tampered(dump(tmp_path / "hub.json"))
    empty_hub()
    before = row_counts()
    refusals = []
    orphans = []
    for obj in serializers.deserialize("json", json.dumps(bad), handle_forward_references=True):
        try:
            # Each row as its own transaction would be, its foreign keys checked on commit: a row naming a
            # refused one (an agent profile's grant on a refused integration) is refused by the database.
            with transaction.atomic():
                obj.save()
                connection.check_constraints(table_names=[obj.object._meta.db_table])
        except (CredentialsUnreadable, StoredSecretRefused) as exc:
            refusals.append((obj.object._meta.label, str(exc)))
        except IntegrityError:
            orphans.append((obj.object._meta.label, getattr(obj.object, "integration_id", None)))
    # The generated profile of the agent token granted pg and bamboo, both refused: their grants cannot stay.
    assert sorted(orphans) == [("agents.ProfileGrant", "bamboo"), ("agents.ProfileGrant", "pg")]
    assert sorted(label for label, _ in refusals) == sorted(
        ["auth.User", "knox.AuthToken", "integrations.Integration", "integrations.Integration"]
        + [m._meta.label for m in apps.get_models() if m._meta.object_name == "AgentToken"]
    )
    assert all(s not in text for _, text in refusals for s in hub["plaintexts"])
    assert Integration.objects.filter(pk__in=["pg", "bamboo"]).count() == 0
    assert get_user_model().objects.count() == before[get_user_model()._meta.label]
