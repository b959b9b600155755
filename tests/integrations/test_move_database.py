"""A SQLite hub moves to PostgreSQL and to MariaDB with the README's commands, every secret intact (issue 25).

The source hub is built as an operator's would be: ``manage.py migrate`` on a new SQLite file, then the
services layer and the token commands, in child processes. The README's commands (read from the README
itself, so the two cannot drift) then move it into a new database on the machine's PostgreSQL or MariaDB
server, named ``h10_port_<random>`` and dropped at the end. Afterwards every credential decrypts to what
was stored, the OAuth token is there, the API, agent and password logins work; before that, an export
made under another key and a hand-edited one are refused with not one row written.

Marked ``slow``: it makes its own databases, so the hub backend of the run does not matter and it runs
once, on the SQLite pass of ``./scripts/test`` (``test_dump_load.py`` runs on every backend).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import pytest

from tests.integrations.support import bare_env
from tests.runtime_fixtures import REPO

pytestmark = pytest.mark.slow

SECTION = "#### Moving a hub from SQLite to PostgreSQL (or MariaDB)"

FILL = """
import json, sqlite3
from io import StringIO
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_celery_beat.schedulers import DatabaseScheduler
from config.celery import app
from integrations.oauth import DjangoTokenStore
from integrations.services import create_integration, set_sharing

S = json.load(open({secrets_path!r}))
User = get_user_model()
porter = User.objects.create_user("porter", password=S["password"], is_staff=True)
viewer = User.objects.create_user("viewer", password=S["viewer_password"])
hr = Group.objects.create(name="hr")
viewer.groups.add(hr)
db = {{"host": "127.0.0.1", "database": "hr", "username": "hub"}}
oauth2 = {{"client_id": "hub", "token_url": "https://auth.example.com/token",
          "authorize_url": "https://auth.example.com/authorize"}}
made = [
    create_integration(actor=porter, id="pg_main", name="PG", kind="postgresql", auth_type="basic",
                       config=db, credentials=S["creds"]["pg_main"], owner=porter),
    create_integration(actor=porter, id="maria_main", name="Maria", kind="mysql", auth_type="basic",
                       config=db, credentials=S["creds"]["maria_main"], owner=porter),
    create_integration(actor=porter, id="bamboo_key", name="BambooHR", kind="bamboohr", auth_type="api_key",
                       config={{"subdomain": "acme"}}, credentials=S["creds"]["bamboo_key"], owner=porter),
    create_integration(actor=porter, id="bamboo_oauth", name="BambooHR OAuth", kind="bamboohr",
                       auth_type="oauth2", config={{"subdomain": "acme", "oauth2": oauth2}},
                       credentials={{"client_secret": S["creds"]["bamboo_oauth"]["client_secret"]}}, owner=porter),
]
sqlite3.connect(S["sqlite_path"]).close()
create_integration(actor=porter, id="hr_file", name="HR file", kind="sqlite", auth_type="none",
                   config={{"path": S["sqlite_path"]}}, owner=porter)
DjangoTokenStore("bamboo_oauth").save(S["creds"]["bamboo_oauth"]["oauth_token"])
set_sharing(made[0], [hr], actor=porter)
from integrations.agents.models import AgentProfile, ProfileGrant
reader = AgentProfile.objects.create(name="hr-reader", tools=["query_hris", "describe_access"], rows_per_day=500,
                                     calls_per_minute=30, max_token_ttl=900)
ProfileGrant.objects.create(profile=reader, integration=made[3], access="read",
                            hris={{"classes": ["public"], "scope": {{"departments": ["Sales"]}}, "redact": True}})
ProfileGrant.objects.create(profile=reader, integration=made[0], access="write",
                            database={{"tables": {{"employees": ["id", "name"]}}, "role": "agent_ro"}})
DatabaseScheduler(app=app)  # the periodic tasks beat writes on its first start

def token(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()[-1]

print(json.dumps({{
    "api_token": token("create_api_token", "porter"),
    "viewer_token": token("create_api_token", "viewer"),
    "agent_token": token("create_agent_token", "agent", "-i", "pg_main", "-i", "bamboo_oauth", "--write"),
    "profile_token": token("create_agent_token", "reader-agent", "--profile", "hr-reader"),
}}))
"""

VERIFY = """
import json
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment
from django_celery_beat.models import PeriodicTask
from integrations.agents.models import AgentProfile
from integrations.models import Integration
from integrations.oauth import DjangoTokenStore

setup_test_environment()  # the test client's host name
T = json.load(open({tokens_path!r}))
S = json.load(open({secrets_path!r}))

def get(path, authorization):
    response = Client().get(path, HTTP_AUTHORIZATION=authorization)
    ids = sorted(i["id"] for i in response.json()["results"]) if response.status_code == 200 else None
    return [response.status_code, ids]

print(json.dumps({{
    "vendor": connection.vendor,
    "credentials": {{i.pk: i.credentials for i in Integration.objects.all()}},
    "oauth_token": DjangoTokenStore("bamboo_oauth").load(),
    "api": get("/api/integrations", "Token " + T["api_token"]),
    "viewer": get("/api/integrations", "Token " + T["viewer_token"]),
    "wrong_api": get("/api/integrations", "Token " + T["api_token"][:-4] + "0000"),
    "agent": Client().get("/api/tools/", HTTP_AUTHORIZATION="Bearer " + T["agent_token"]).status_code,
    "wrong_agent": Client().get("/api/tools/", HTTP_AUTHORIZATION="Bearer " + T["agent_token"][:-4] + "AAAA").status_code,
    "login": Client().post("/accounts/login/", {{"username": "porter", "password": S["password"]}}).status_code,
    "bad_login": Client().post("/accounts/login/", {{"username": "viewer", "password": "nope"}}).status_code,
    "periodic_tasks": PeriodicTask.objects.count(),
    "profiles": {{
        p.name: [p.generated, p.tools, p.calls_per_minute, p.rows_per_day, p.max_token_ttl,
                 sorted([g.integration_id, g.access, g.hris, g.database] for g in p.grants.all()),
                 sorted(t.name for t in p.tokens.all())]
        for p in AgentProfile.objects.all()
    }},
    "profile_tools": sorted(t["name"] for t in Client().get(
        "/api/tools/", HTTP_AUTHORIZATION="Bearer " + T["profile_token"]).json()["tools"]),
}}))
"""


def readme_commands() -> list[str]:
    """The move, as the README's Production section spells it: each command line of its sh block."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert [line for line in lines if "manage.py" not in line] == ["umask 077"], lines
    return [line for line in lines if "manage.py" in line]


def run_readme_command(line: str, env: dict[str, str], cwd: Path, source: str, target: str) -> Any:
    """One README line: ``VAR=value python manage.py ...``, with the README's example URLs replaced."""
    words = shlex.split(line)
    overrides: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        if name == "DATABASE_URL":
            value = source if value.startswith("sqlite:") else target
        overrides[name] = value
    assert words[:2] == ["python", "manage.py"], line
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *words[2:]],
        cwd=cwd,
        env={**env, **overrides},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def shell(code: str, env: dict[str, str]) -> Any:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _secret(name: str) -> str:
    return f"{name}-{secrets.token_urlsafe(18)}"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A filled SQLite hub, and the README's export of it (plus one under another key)."""
    home = tmp_path_factory.mktemp("move-source")
    key = secrets.token_urlsafe(40)
    env = bare_env(
        home,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="true",
        SECRET_KEY=secrets.token_urlsafe(40),
        CREDENTIALS_KEY=key,
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Other tests present wrong tokens from 127.0.0.1 into the same Redis counter (as settings_test does).
        TOKEN_FAILURE_LIMIT="100000",
    )
    (home / "sqlite").mkdir()
    oauth_token = {
        "access_token": _secret("access"),
        "refresh_token": _secret("refresh"),
        "token_type": "Bearer",
        "expires_at": 4_102_444_800,
    }
    values = {
        "password": _secret("porter-pw"),
        "viewer_password": _secret("viewer-pw"),
        "sqlite_path": str(home / "sqlite" / "hr.sqlite3"),
        "creds": {
            "pg_main": {"password": _secret("pg-pw")},
            "maria_main": {"password": _secret("maria-pw")},
            "bamboo_key": {"api_key": secrets.token_hex(20)},
            "bamboo_oauth": {"client_secret": _secret("client-secret"), "oauth_token": oauth_token},
        },
    }
    (home / "secrets.json").write_text(json.dumps(values))
    url = f"sqlite:///{home / 'hub.sqlite3'}"
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=REPO,
        env={**env, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    tokens = shell(FILL.format(secrets_path=str(home / "secrets.json")), {**env, "DATABASE_URL": url})
    (home / "tokens.json").write_text(json.dumps(tokens))

    dump, migrate, load = readme_commands()
    assert "dumpdata" in dump and "migrate" in migrate and "loaddata" in load
    exported = run_readme_command(dump, env, home, url, "")
    assert exported.returncode == 0, exported.stderr[-3000:]
    good = (home / "hub.json").read_text()
    (home / "good.json").write_text(good)
    other_key = secrets.token_urlsafe(40)
    exported = run_readme_command(
        dump, {**env, "CREDENTIALS_KEY": other_key, "CREDENTIALS_KEY_FALLBACKS": key}, home, url, ""
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    (home / "other-key.json").write_text((home / "hub.json").read_text())

    plaintexts = [values["password"], values["viewer_password"], *tokens.values()]
    plaintexts += [oauth_token["access_token"], oauth_token["refresh_token"]]
    plaintexts += [v for c in values["creds"].values() for v in c.values() if isinstance(v, str)]
    return {
        "home": home,
        "env": env,
        "url": url,
        "values": values,
        "tokens": tokens,
        "plaintexts": plaintexts,
        "good": good,
        "other_key": (home / "other-key.json").read_text(),
    }


def _server_connection(vendor: str, url: str) -> Any:
    params = dj_database_url.parse(url)
    if vendor == "postgresql":
        import psycopg

        return psycopg.connect(
            host=params["HOST"],
            port=params["PORT"] or 5432,
            user=params["USER"],
            dbname=params["NAME"],
            autocommit=True,
        )
    import MySQLdb

    conn = MySQLdb.connect(host=params["HOST"], port=int(params["PORT"] or 3306), user=params["USER"])
    conn.autocommit(True)
    return conn


def row_counts(vendor: str, server: Any, name: str) -> dict[str, int]:
    schema = "public" if vendor == "postgresql" else name
    cursor = server.cursor()
    cursor.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'"
        + (" AND table_catalog = %s" if vendor == "postgresql" else ""),
        [schema, name] if vendor == "postgresql" else [schema],
    )
    counts: dict[str, int] = {}
    quote = '"' if vendor == "postgresql" else "`"
    for (table,) in cursor.fetchall():
        cursor.execute(f"SELECT COUNT(*) FROM {quote}{schema}{quote}.{quote}{table}{quote}")
        counts[table] = cursor.fetchone()[0]
    return counts


@pytest.fixture(params=["postgresql", "mariadb"])
def target(request: pytest.FixtureRequest, pg_url: str, mysql_url: str) -> Iterator[dict[str, Any]]:
    """A new, empty database on the machine's server, dropped afterwards."""
    vendor = request.param
    server_url = pg_url if vendor == "postgresql" else mysql_url
    name = f"h10_port_{secrets.token_hex(6)}"
    server = _server_connection(vendor, server_url)
    charset = "" if vendor == "postgresql" else " CHARACTER SET utf8mb4"
    server.cursor().execute(f"CREATE DATABASE {name}{charset}")
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        reader = _server_connection(vendor, url if vendor == "postgresql" else server_url)
        try:
            yield {"vendor": vendor, "url": url, "name": name, "counts": lambda: row_counts(vendor, reader, name)}
        finally:
            reader.close()
    finally:
        server.cursor().execute(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if vendor == "postgresql" else ""))
        server.close()


def test_the_export_holds_no_plaintext_secret(source):
    for dump in (source["good"], source["other_key"]):
        assert [s for s in source["plaintexts"] if s in dump] == []
        objects = json.loads(dump)
        exported = {o["pk"]: o["fields"]["credentials"] for o in objects if o["model"] == "integrations.integration"}
        assert exported["hr_file"] is None and "<encrypted>" not in dump
        assert all(exported[i].startswith("encrypted:") for i in source["values"]["creds"]), exported
    kids = {dump.split('"encrypted:', 1)[1][:8] for dump in (source["good"], source["other_key"])}
    assert len(kids) == 2  # the two exports name two different keys


def test_the_readme_commands_move_every_secret_to_the_new_database(source, target, tmp_path):
    home, env = source["home"], source["env"]
    _dump, migrate, load = readme_commands()

    def run(line: str, fixture: str) -> Any:
        (tmp_path / "hub.json").write_text(fixture)
        done = run_readme_command(line, env, tmp_path, source["url"], target["url"])
        assert [s for s in source["plaintexts"] if s in done.stdout + done.stderr] == []
        return done

    migrated = run(migrate, "")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    empty = target["counts"]()
    assert empty["integrations_integration"] == 0 and empty["auth_user"] == 0

    # An export made under another key: refused, every credentialed integration named, nothing written.
    refused = run(load, source["other_key"])
    assert refused.returncode != 0 and "nothing was loaded" in refused.stderr
    for pk in source["values"]["creds"]:
        assert f"integrations.Integration '{pk}' credentials: encrypted under another CREDENTIALS_KEY" in refused.stderr
    assert target["counts"]() == empty

    # Hand edits: the placeholder older dumps wrote, and an agent token's hash replaced. Refused the same way.
    edited = json.loads(source["good"])
    for obj in edited:
        if obj["model"] == "integrations.integration" and obj["pk"] == "bamboo_oauth":
            obj["fields"]["credentials"] = "<encrypted>"
        if obj["model"].endswith(".agenttoken") and obj["fields"]["name"] == "agent":
            obj["fields"]["token_hash"] = "0" * 63 + "G"
    refused = run(load, json.dumps(edited))
    assert refused.returncode != 0, refused.stdout
    assert "2 stored secret(s)" in refused.stderr
    assert "integrations.Integration 'bamboo_oauth' credentials: the placeholder" in refused.stderr
    assert "token_hash: not a SHA-256 token hash" in refused.stderr
    assert target["counts"]() == empty

    # The export as made: everything arrives, and every secret works.
    loaded = run(load, source["good"])
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert "Installed" in loaded.stdout
    found = shell(
        VERIFY.format(tokens_path=str(home / "tokens.json"), secrets_path=str(home / "secrets.json")),
        {**env, "DATABASE_URL": target["url"]},
    )
    assert found["vendor"] == {"postgresql": "postgresql", "mariadb": "mysql"}[target["vendor"]]
    expected = {**source["values"]["creds"], "hr_file": None}
    assert found["credentials"] == expected
    assert found["oauth_token"] == source["values"]["creds"]["bamboo_oauth"]["oauth_token"]
    every = sorted(expected)
    assert found["api"] == [200, every] and found["viewer"] == [200, ["pg_main"]]
    assert found["wrong_api"][0] == 401 and found["wrong_agent"] == 401
    assert found["agent"] == 200
    assert found["login"] == 302 and found["bad_login"] == 200
    assert found["periodic_tasks"] > 0
    # Agent profiles arrive with their grants (data rules), quotas and tokens; the profile's token works.
    assert found["profiles"] == {
        "hr-reader": [
            False,
            ["query_hris", "describe_access"],
            30,
            500,
            900,
            [
                [
                    "bamboo_oauth",
                    "read",
                    {"classes": ["public"], "scope": {"departments": ["Sales"]}, "redact": True},
                    {},
                ],
                ["pg_main", "write", {}, {"tables": {"employees": ["id", "name"]}, "role": "agent_ro"}],
            ],
            ["reader-agent"],
        ],
        "token agent": [
            True,
            None,
            None,
            None,
            86400 * 365,
            [["bamboo_oauth", "write", {}, {}], ["pg_main", "write", {}, {}]],
            ["agent"],
        ],
    }
    assert found["profile_tools"] == ["describe_access", "query_hris"]
    assert target["counts"]()["integrations_integrationevent"] > 0
