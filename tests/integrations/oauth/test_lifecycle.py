"""The token lifecycle against the provider configured the strict way (5-second access tokens,
single-use rotating refresh tokens), with the hub's default settings (a 300 s refresh margin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from django.db import connection

from integrations.models import Integration
from integrations.services import token_provider_for
from tests.integrations.oauth.conftest import (
    ROOT,
    STRICT_TOKEN_SECONDS,
    AuthServer,
    ProviderBrowser,
    authorized_token,
)


def run_workers(integration_id: str, server: AuthServer, processes: int, calls: int) -> list[dict[str, Any]]:
    """``processes`` hub worker processes making ``calls`` concurrent calls each (child_get_token)."""
    env = os.environ | {"HUB_CHILD_DB_NAME": str(connection.settings_dict["NAME"])}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integrations.oauth.child_get_token",
            integration_id,
            f"{server.url}/api/me",
            str(processes),
            str(calls),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)  # the workers are other processes: they must see committed rows
def test_twelve_calls_from_two_workers_refresh_a_five_second_token_once(
    strict_authserver: AuthServer, strict_browser: ProviderBrowser, make_strict_integration: Any
) -> None:
    token = authorized_token(strict_authserver, strict_browser, state="short")
    assert token["expires_at"] - time.time() <= STRICT_TOKEN_SECONDS
    make_strict_integration("short_lived", token=token | {"expires_at": int(time.time()) - 1})
    strict_authserver.reset_stats()

    outcomes = run_workers("short_lived", strict_authserver, processes=2, calls=6)

    assert len(outcomes) == 12 and len({o["pid"] for o in outcomes}) == 2
    assert all("error" not in o for o in outcomes), outcomes
    assert [o["api_status"] for o in outcomes] == [200] * 12
    assert len({o["token_sha256"] for o in outcomes}) == 1  # everyone went on with the one new token
    stats = strict_authserver.stats()
    # With the 300 s margin applied to a 5 s token, every call refreshed (16 grants for 12 calls).
    assert stats.get("refresh_token") == 1 and stats.get("refresh_token:200") == 1, stats
    stored = Integration.objects.get(pk="short_lived").credentials["oauth_token"]
    assert stored["expires_in"] == STRICT_TOKEN_SECONDS


@pytest.mark.django_db
def test_client_credentials_with_a_five_second_token_fetches_once(
    strict_authserver: AuthServer, make_strict_integration: Any
) -> None:
    integration = make_strict_integration("machine", grant="client_credentials")
    first = token_provider_for(integration).get_token()
    # Another worker, right after: the fresh token is used, not fetched again.
    assert token_provider_for(Integration.objects.get(pk="machine")).get_token() == first
    assert strict_authserver.resource(first).status_code == 200
    assert strict_authserver.stats().get("client_credentials") == 1
