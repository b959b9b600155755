"""Tokens are encrypted at rest and appear in no log line, event, page or API response."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from integrations.models import Integration, IntegrationEvent
from integrations.oauth.views import SESSION_FLOWS
from integrations.services import token_provider_for
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import AuthServer, ProviderBrowser
from tests.sqlite_files import sqlite_file_bytes


@pytest.mark.django_db(transaction=True)  # committed, so the rows are really in the database file
def test_tokens_never_leave_the_encrypted_column(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)  # everything any logger says, Authlib's and httpx's included
    make_integration()
    start = hub_client.post(reverse("oauth:start", args=["bamboo_oauth"]))
    verifier = next(iter(hub_client.session[SESSION_FLOWS].values()))["verifier"]
    callback = hub_client.get(provider_browser.authorize(start["Location"]).removeprefix("http://testserver"))
    assert callback.status_code == 200
    first = Integration.objects.get(pk="bamboo_oauth").credentials["oauth_token"]

    # A refresh (rotation) and a refused refresh also leave nothing behind.
    credentials = Integration.objects.get(pk="bamboo_oauth").credentials
    credentials["oauth_token"]["expires_at"] = int(time.time()) - 1
    Integration.objects.filter(pk="bamboo_oauth").update(credentials=credentials)
    token_provider_for(Integration.objects.get(pk="bamboo_oauth")).get_token()
    second = Integration.objects.get(pk="bamboo_oauth").credentials["oauth_token"]
    assert second["access_token"] != first["access_token"]

    secrets = [
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        clients.CODE_CLIENT_SECRET,
    ]

    # At rest: the raw column holds ciphertext; the database file and its WAL hold no token.
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", ["bamboo_oauth"])
        raw = bytes(cursor.fetchone()[0])
    assert all(s.encode() not in raw for s in secrets) and b"oauth_token" not in raw
    if connection.vendor == "sqlite":
        blob = b"".join(sqlite_file_bytes().values())
        assert blob and all(s.encode() not in blob for s in secrets)
    dump = io.StringIO()
    call_command("dumpdata", "integrations", stdout=dump)
    assert all(s not in dump.getvalue() for s in secrets) and "bamboo_oauth" in dump.getvalue()

    # Events: what happened, never with what.
    events = "".join(f"{e.message}{e.detail}" for e in IntegrationEvent.objects.filter(integration_ref="bamboo_oauth"))
    assert "token_refresh" in str(list(IntegrationEvent.objects.values_list("type", flat=True)))
    assert all(s not in events for s in secrets)

    # Responses: the result page, the dashboard and the API.
    pages = [callback.content.decode()]
    for url in (
        f"/api/integrations/{'bamboo_oauth'}",
        "/api/integrations",
        "/integrations/bamboo_oauth",
        "/api/integrations/bamboo_oauth/events",
    ):
        response = hub_client.get(url)
        assert response.status_code == 200, url
        pages.append(response.content.decode())
    assert all(s not in page for s in [*secrets, verifier] for page in pages)

    # Logs of the whole story, and nothing that would let someone finish the flow either.
    assert caplog.records, "expected some log output to inspect"
    assert all(s not in caplog.text for s in [*secrets, verifier])
