"""Ten worker processes need the same expired token at the same moment: one refresh, ten happy workers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from django.db import connection

from integrations.models import EventType, Integration, IntegrationEvent
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import ROOT, AuthServer, ProviderBrowser, authorized_token

PROCESSES = 10


@pytest.mark.django_db(transaction=True)  # the workers are other processes: they must see committed rows
@pytest.mark.parametrize("lock", ["redis", "database"])
def test_ten_processes_refresh_an_expired_token_once(
    lock: str, authserver: AuthServer, provider_browser: ProviderBrowser, make_integration: Any
) -> None:
    token = authorized_token(authserver, provider_browser, state="c")
    expired = token | {"expires_at": int(time.time()) - 5}
    integration_id = f"race_{lock}"
    make_integration(integration_id, token=expired)
    authserver.reset_stats()

    env = os.environ | {"HUB_CHILD_DB_NAME": str(connection.settings_dict["NAME"]), "OAUTH2_LOCK": lock}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integrations.oauth.child_get_token",
            integration_id,
            f"{authserver.url}/api/me",
            str(PROCESSES),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcomes = json.loads(run.stdout.strip().splitlines()[-1])
    for secret in (token["access_token"], token["refresh_token"], clients.CODE_CLIENT_SECRET):
        assert secret not in run.stdout + run.stderr  # not in any worker's log either

    assert len({o["pid"] for o in outcomes}) == PROCESSES  # ten separate OS processes
    assert all("error" not in o for o in outcomes), outcomes
    stats = authserver.stats()
    assert stats.get("refresh_token") == 1 and stats.get("refresh_token:200") == 1, stats
    stored = Integration.objects.get(pk=integration_id).credentials["oauth_token"]
    assert stored["access_token"] != token["access_token"]
    assert stored["refresh_token"] != token["refresh_token"]  # the rotated refresh token was kept
    new_sha = hashlib.sha256(stored["access_token"].encode()).hexdigest()
    assert {o["token_sha256"] for o in outcomes} == {new_sha}  # all ten went on with the new token
    assert [o["api_status"] for o in outcomes] == [200] * PROCESSES
    assert stats.get("resource:200") == PROCESSES
    refreshes = IntegrationEvent.objects.filter(integration_ref=integration_id, type=EventType.TOKEN_REFRESH)
    assert [(e.ok, e.detail["rotated"]) for e in refreshes] == [(True, True)]
