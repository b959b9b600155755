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
from django.test import Client
from django.urls import reverse

from connectors.base import BaseConfig
from connectors.errors import ConnectorError
from connectors.http.base import HttpConnector
from integrations import connector_runtime
from integrations.models import EventType, Integration, IntegrationEvent, Status
from integrations.services import token_provider_for, update_integration
from integrations.services.tokens import refresh_expiring_tokens
from integrations.tasks import refresh_oauth_tokens
from tests.connectors.policies import LOOPBACK
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import (
    ROOT,
    STRICT_TOKEN_SECONDS,
    AuthServer,
    ProviderBrowser,
    authorized_token,
)


class Clock:
    """The token provider's clock (seconds since the epoch), moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class ProviderApiConfig(BaseConfig):
    base_url: str


class ProviderApi(HttpConnector[ProviderApiConfig]):
    """The provider's own API (``/api/me``) through the HTTP family's choke point, bearer-authenticated."""

    kind = "provider_api"
    label = "Provider API"
    family = "hris"
    config_class = ProviderApiConfig
    auth_types = ("oauth2",)

    def _base_url(self) -> str:
        return self.config.base_url

    def _allow_insecure_loopback(self) -> bool:
        return True

    def _probe(self) -> dict[str, Any]:
        return dict(self._request("me", "GET", "api/me").json())


def provider_api(server: AuthServer, integration: Integration, clock: Clock) -> ProviderApi:
    """A connector as a worker has it: the hub's shared runtime (Redis circuit) and token provider."""
    config = ProviderApiConfig(base_url=server.url)
    runtime = connector_runtime.make_runtime(integration.pk, config, token_provider_for(integration, clock=clock))
    runtime.policy = LOOPBACK
    return ProviderApi(config, runtime=runtime, auth_type="oauth2")


def use_for_ten_minutes(api: ProviderApi, clock: Clock) -> list[str]:
    """40 calls, one every 15 s of the provider's clock; the error text of each (none may succeed)."""
    errors = []
    for _ in range(40):
        clock.offset += 15
        with pytest.raises(ConnectorError) as failed:
            api._probe()
        errors.append(failed.value.message)
    return errors


def status_changes(integration_id: str) -> list[str]:
    events = IntegrationEvent.objects.filter(integration_ref=integration_id, type=EventType.STATUS_CHANGE)
    return [e.detail["to"] for e in events.order_by("id")]


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


@pytest.mark.django_db
def test_invalid_grant_needs_a_reconnect_and_never_opens_the_circuit(
    strict_authserver: AuthServer,
    strict_browser: ProviderBrowser,
    make_strict_integration: Any,
    hub_client: Client,
) -> None:
    token = authorized_token(strict_authserver, strict_browser, state="dead")
    strict_authserver.revoke(token["refresh_token"])  # the user removed the app at the provider
    integration = make_strict_integration("dead_grant", token=token | {"expires_at": int(time.time()) - 1})
    Integration.objects.filter(pk="dead_grant").update(status=Status.CONNECTED)
    strict_authserver.reset_stats()
    clock = Clock()
    api = provider_api(strict_authserver, integration, clock)

    errors = use_for_ten_minutes(api, clock)

    assert all("reconnect the integration" in e and "invalid_grant" in e for e in errors), errors[:3]
    assert not [e for e in errors if "circuit open" in e]
    assert strict_authserver.stats() == {"refresh_token": 1, "refresh_token:400": 1}  # one request in 10 minutes
    stored = Integration.objects.get(pk="dead_grant")
    assert stored.status == Status.RECONNECT_REQUIRED
    assert "refresh_token" not in stored.credentials["oauth_token"]  # the refused one is gone
    assert connector_runtime.circuit_wait("dead_grant") is None

    # Re-authorizing: the very next call goes through, and the status says so.
    start = hub_client.post(reverse("oauth:start", args=["dead_grant"]))
    redirect = strict_browser.authorize(start["Location"])
    assert hub_client.get(redirect.removeprefix("http://testserver")).status_code == 200
    assert api._probe()["user"] == clients.PROVIDER_USER
    assert Integration.objects.get(pk="dead_grant").status == Status.CONNECTED
    assert status_changes("dead_grant") == [Status.RECONNECT_REQUIRED, Status.CONNECTED]


@pytest.mark.django_db
def test_a_fresh_token_refused_by_the_api_needs_a_reconnect(
    strict_authserver: AuthServer, strict_browser: ProviderBrowser, make_strict_integration: Any
) -> None:
    token = authorized_token(strict_authserver, strict_browser, state="withdrawn")
    integration = make_strict_integration("withdrawn", token=token)
    clock = Clock()
    api = provider_api(strict_authserver, integration, clock)
    assert api._probe()["user"] == clients.PROVIDER_USER
    strict_authserver.refuse_api()
    try:
        strict_authserver.reset_stats()
        errors = use_for_ten_minutes(api, clock)
    finally:
        strict_authserver.refuse_api(False)
    # The first call refreshes the expired token; the API answers 401 to the token just issued: not a
    # stale token but a refusal, so no second refresh, and every later call says what to do.
    assert all("reconnect the integration" in e for e in errors), errors[:3]
    assert not [e for e in errors if "circuit open" in e]
    assert strict_authserver.stats() == {"refresh_token": 1, "refresh_token:200": 1, "resource:401": 1}
    stored = Integration.objects.get(pk="withdrawn")
    assert stored.status == Status.RECONNECT_REQUIRED and "refresh_token" not in stored.credentials["oauth_token"]


@pytest.mark.django_db
def test_refused_client_credentials_are_not_a_reconnect_and_wait_for_a_corrected_secret(
    strict_authserver: AuthServer, make_strict_integration: Any, hub_user: Any
) -> None:
    integration = make_strict_integration("machine", grant="client_credentials")
    Integration.objects.filter(pk="machine").update(
        status=Status.CONNECTED, credentials={"client_secret": "not-the-secret"}
    )
    integration.refresh_from_db()
    clock = Clock()

    errors = use_for_ten_minutes(provider_api(strict_authserver, integration, clock), clock)

    assert all("invalid_client" in e and "client ID, secret" in e for e in errors), errors[:3]
    assert not [e for e in errors if "circuit open" in e or "reconnect the integration" in e]
    assert strict_authserver.stats() == {"client_credentials": 1, "client_credentials:401": 1}
    integration.refresh_from_db()
    assert integration.status == Status.ERROR and "reconnecting does not help" in integration.last_error
    assert integration.credentials["oauth_token"]["auth_state"] == "credentials_invalid"

    # The operator corrects the secret: the next call fetches a token and succeeds.
    update_integration(integration, actor=hub_user, credentials={"client_secret": clients.CC_CLIENT_SECRET})
    integration.refresh_from_db()
    assert provider_api(strict_authserver, integration, clock)._probe()["client_id"] == clients.CC_CLIENT_ID


@pytest.mark.django_db
def test_beat_refreshes_a_token_before_it_expires_and_workers_then_make_no_grant(
    strict_authserver: AuthServer, strict_browser: ProviderBrowser, make_strict_integration: Any
) -> None:
    token = authorized_token(strict_authserver, strict_browser, state="beat")
    make_strict_integration("ahead", token=token)
    strict_authserver.reset_stats()
    expiry = float(token["expires_at"])
    clock = Clock()  # the beat runs every 0.5 s; the margin is 2.5 s (half the 5 s lifetime)

    # Just issued, the token does not reach its margin before the next run: left alone.
    assert refresh_expiring_tokens(within=0.5, clock=clock) == {"refreshed": 0, "failed": 0}
    assert strict_authserver.stats() == {}
    # 2.5 s later it would by the next run: refreshed now, before the old token expires.
    clock.offset = STRICT_TOKEN_SECONDS / 2
    assert refresh_expiring_tokens(within=0.5, clock=clock) == {"refreshed": 1, "failed": 0}
    assert time.time() < expiry
    stored = Integration.objects.get(pk="ahead").credentials["oauth_token"]
    assert stored["access_token"] != token["access_token"] and stored["expires_at"] >= expiry

    # A worker calling afterwards gets the new token without a grant of its own (single flight).
    worker = token_provider_for(Integration.objects.get(pk="ahead"))
    assert strict_authserver.resource(worker.get_token()).status_code == 200
    assert strict_authserver.stats().get("refresh_token") == 1
    [event] = IntegrationEvent.objects.filter(integration_ref="ahead", type=EventType.TOKEN_REFRESH)
    assert event.ok and event.detail["rotated"] is True


@pytest.mark.django_db
def test_the_beat_task_is_scheduled_and_refreshes_tokens_inside_their_margin(
    settings: Any, authserver: AuthServer, provider_browser: ProviderBrowser, make_integration: Any
) -> None:
    assert {"task": "integrations.refresh_oauth_tokens", "schedule": 60.0} in settings.CELERY_BEAT_SCHEDULE.values()
    token = authorized_token(authserver, provider_browser, state="beat-task")
    make_integration("hour_token", token=token | {"expires_at": int(time.time()) + 330})  # 300 s margin + 30
    make_integration("fresh_token", token=authorized_token(authserver, provider_browser, state="fresh"))
    authserver.reset_stats()

    assert refresh_oauth_tokens.apply().get() == {"refreshed": 1, "failed": 0}
    assert authserver.stats() == {"refresh_token": 1, "refresh_token:200": 1}
    stored = Integration.objects.get(pk="hour_token").credentials["oauth_token"]
    assert stored["expires_at"] > time.time() + 3000 and authserver.resource(stored["access_token"]).status_code == 200
