"""The authorization-code flow through the hub's views, with the real provider in its own process."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from integrations.models import EventType, Integration, IntegrationEvent, Status
from integrations.oauth.views import SESSION_FLOWS
from tests import factories
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import AuthServer, ProviderBrowser, query

pytestmark = pytest.mark.django_db

CALLBACK = "/oauth/callback/"


def start(client: Client, integration_id: str = "bamboo_oauth") -> str:
    response = client.post(reverse("oauth:start", args=[integration_id]))
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def callback_path(provider_redirect: str) -> str:
    assert provider_redirect.startswith(clients.HUB_REDIRECT_URI)
    return provider_redirect.removeprefix("http://testserver")


def stored_token(integration_id: str = "bamboo_oauth") -> dict[str, Any] | None:
    return (Integration.objects.get(pk=integration_id).credentials or {}).get("oauth_token")


def assert_refused(response: Any, reason: str, *phrases: str) -> str:
    assert response.status_code == 400
    html = response.content.decode()
    assert f'data-reason="{reason}"' in html
    for phrase in ("Nothing was stored", *phrases):
        assert phrase in html, f"{phrase!r} not on the page"
    return html


def test_full_authorization_code_flow(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    make_integration()
    authorize_url = start(hub_client)
    params = query(authorize_url)
    assert authorize_url.startswith(authserver.authorize_url)
    assert params["client_id"] == clients.CODE_CLIENT_ID and params["redirect_uri"] == clients.HUB_REDIRECT_URI
    assert params["code_challenge_method"] == "S256" and params["state"]
    # The verifier stays server-side: in the session, not in the URL.
    [flow] = hub_client.session[SESSION_FLOWS].values()
    assert flow["verifier"] not in authorize_url

    redirect = provider_browser.authorize(authorize_url)
    response = hub_client.get(callback_path(redirect))
    html = response.content.decode()
    assert response.status_code == 200 and 'data-oauth-result="ok"' in html and "Connected" in html

    integration = Integration.objects.get(pk="bamboo_oauth")
    token = integration.credentials["oauth_token"]
    assert integration.status == Status.CONNECTED
    assert integration.credentials["client_secret"] == clients.CODE_CLIENT_SECRET  # kept
    assert token["refresh_token"] and token["expires_at"] > time.time() + 3000
    assert authserver.resource(token["access_token"]).json()["user"] == clients.PROVIDER_USER
    assert token["access_token"] not in html and token["refresh_token"] not in html
    events = IntegrationEvent.objects.filter(integration_ref="bamboo_oauth")
    connect = events.get(type=EventType.CONNECT)
    assert connect.ok and connect.actor == "operator" and connect.detail["grant"] == "authorization_code"
    assert events.filter(type=EventType.STATUS_CHANGE, detail__to="connected").exists()
    assert authserver.stats().get("authorization_code:200") == 1
    assert hub_client.session[SESSION_FLOWS] == {}


def test_replayed_state_is_refused_without_a_second_exchange(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    make_integration()
    path = callback_path(provider_browser.authorize(start(hub_client)))
    assert hub_client.get(path).status_code == 200
    first = stored_token()
    assert_refused(hub_client.get(path), "replayed_state", "already used")
    assert stored_token() == first
    assert authserver.stats().get("authorization_code") == 1


@pytest.mark.parametrize(
    ("tamper", "reason", "phrase"),
    [
        (lambda state: "", "missing_state", "no state"),
        (lambda state: "forged-state-value", "invalid_state", "not issued by this hub"),
        (lambda state: state[:-2] + ("AA" if not state.endswith("AA") else "BB"), "invalid_state", "forged or altered"),
    ],
    ids=["missing", "forged", "altered"],
)
def test_missing_or_forged_state_is_refused(
    hub_client: Client,
    make_integration: Any,
    authserver: AuthServer,
    provider_browser: ProviderBrowser,
    tamper: Any,
    reason: str,
    phrase: str,
) -> None:
    make_integration()
    answer = query(provider_browser.authorize(start(hub_client)))
    response = hub_client.get(CALLBACK, {"code": answer["code"], "state": tamper(answer["state"])})
    assert_refused(response, reason, phrase)
    assert stored_token() is None
    assert Integration.objects.get(pk="bamboo_oauth").status == Status.DISCONNECTED
    assert authserver.stats().get("authorization_code", 0) == 0  # the code never reached the token endpoint


def test_expired_state_is_refused(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser, settings: Any
) -> None:
    settings.OAUTH2_STATE_MAX_AGE_SECONDS = 1
    make_integration()
    path = callback_path(provider_browser.authorize(start(hub_client)))
    time.sleep(2.1)
    assert_refused(hub_client.get(path), "expired_state", "Start it again")
    assert stored_token() is None and authserver.stats().get("authorization_code", 0) == 0


def test_another_users_state_is_refused(
    hub_client: Client,
    make_integration: Any,
    authserver: AuthServer,
    provider_browser: ProviderBrowser,
    django_user_model: Any,
) -> None:
    make_integration()
    path = callback_path(provider_browser.authorize(start(hub_client)))
    intruder = Client()
    intruder.force_login(factories.staff("intruder", password="intruder-password-1"))
    assert_refused(intruder.get(path), "other_user_state", "another user")
    assert stored_token() is None and authserver.stats().get("authorization_code", 0) == 0
    # The user who started it can still finish: the intruder consumed nothing.
    assert hub_client.get(path).status_code == 200 and stored_token()


def test_state_from_another_browser_session_is_refused(
    hub_client: Client, make_integration: Any, provider_browser: ProviderBrowser, hub_user: Any
) -> None:
    make_integration()
    path = callback_path(provider_browser.authorize(start(hub_client)))
    other_session = Client()
    other_session.force_login(hub_user)
    assert_refused(other_session.get(path), "unknown_state", "not started in this browser session")
    assert stored_token() is None


def test_callback_needs_a_logged_in_user(client: Client, make_integration: Any) -> None:
    make_integration()
    response = client.get(CALLBACK, {"code": "x", "state": "y"})
    assert response.status_code == 302 and "login" in response["Location"]


def test_access_denied_at_the_provider(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    make_integration()
    redirect = provider_browser.authorize(start(hub_client), allow=False)
    assert query(redirect)["error"] == "access_denied"
    assert_refused(hub_client.get(callback_path(redirect)), "access_denied", "declined at the provider")
    assert stored_token() is None
    assert Integration.objects.get(pk="bamboo_oauth").status == Status.DISCONNECTED
    assert not IntegrationEvent.objects.filter(integration_ref="bamboo_oauth", type=EventType.CONNECT).exists()


def test_wrong_pkce_verifier_is_refused_by_the_provider_and_reported(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    make_integration()
    authorize_url = start(hub_client)
    session = hub_client.session
    flows = session[SESSION_FLOWS]
    [nonce] = flows
    flows[nonce]["verifier"] = flows[nonce]["verifier"][::-1]  # not the one the challenge was made from
    session[SESSION_FLOWS] = flows
    session.save()
    response = hub_client.get(callback_path(provider_browser.authorize(authorize_url)))
    assert_refused(
        response, "exchange_refused", "refused the authorization code", "invalid_grant", "PKCE verifier does not match"
    )
    assert authserver.stats().get("authorization_code:400") == 1  # the provider checked it and said no
    assert stored_token() is None
    assert Integration.objects.get(pk="bamboo_oauth").status == Status.DISCONNECTED


def test_start_refuses_what_it_cannot_start(
    hub_client: Client, make_integration: Any, django_user_model: Any, hub_user: Any
) -> None:
    other = factories.user("someone-else", password="someone-else-password")
    make_integration("not_mine", owner=other)
    make_integration("machine", grant="client_credentials")
    Integration.objects.create(id="plain_db", name="DB", kind="sqlite", auth_type="none", owner=hub_user)

    response = hub_client.get(reverse("oauth:start", args=["not_mine"]))
    assert response.status_code == 400 and b'data-reason="not_found"' in response.content
    response = hub_client.get(reverse("oauth:start", args=["plain_db"]))
    assert response.status_code == 400 and b'data-reason="not_oauth2"' in response.content
    response = hub_client.get(reverse("oauth:start", args=["machine"]))
    assert response.status_code == 400 and b"client-credentials grant" in response.content
    assert hub_client.session.get(SESSION_FLOWS) in (None, {})


def test_only_the_owner_or_staff_may_authorize(make_integration: Any, django_user_model: Any, hub_user: Any) -> None:
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="hr-team")
    integration = make_integration()
    integration.shared_with_groups.add(team)
    member = factories.user("member", password="member-password-1", groups=(team,))
    client = Client()
    client.force_login(member)
    for method in (client.get, client.post):
        response = method(reverse("oauth:start", args=["bamboo_oauth"]))
        assert response.status_code == 403 and b"owner or staff" in response.content
    assert client.session.get(SESSION_FLOWS) in (None, {})


def test_a_get_of_start_only_shows_where_it_would_go(hub_client: Client, make_integration: Any) -> None:
    """A link, a prefetch or another site's <img> must not start an authorization (a provider that remembers
    the user's consent would complete it unseen and replace the token): GET shows a page, POST starts."""
    make_integration()
    url = reverse("oauth:start", args=["bamboo_oauth"])
    page = hub_client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<form method="post" action="{url}"' in html and "csrfmiddlewaretoken" in html
    assert hub_client.session.get(SESSION_FLOWS) in (None, {})
    assert not IntegrationEvent.objects.filter(integration_ref="bamboo_oauth").exists()

    forged = Client(enforce_csrf_checks=True)  # another site's form: the session cookie, no CSRF token
    forged.cookies = hub_client.cookies
    assert forged.post(url).status_code == 403
    assert hub_client.session.get(SESSION_FLOWS) in (None, {})

    assert start(hub_client).startswith("http")  # the button's POST: off to the provider
    assert len(hub_client.session[SESSION_FLOWS]) == 1


def test_a_forged_host_header_does_not_change_the_redirect_uri(
    hub_client: Client, make_integration: Any, settings: Any
) -> None:
    make_integration()
    # An allowed host that is not the hub's public address, and a forwarded host that Django ignores.
    forged = hub_client.post(
        reverse("oauth:start", args=["bamboo_oauth"]), HTTP_HOST="localhost:9999", HTTP_X_FORWARDED_HOST="evil.test"
    )
    assert forged.status_code == 302
    assert query(forged["Location"])["redirect_uri"] == "http://testserver/oauth/callback/"

    settings.HUB_PUBLIC_URL = "https://hub.example.com"
    start_page = hub_client.get(reverse("oauth:start", args=["bamboo_oauth"]), HTTP_HOST="localhost:9999")
    assert (
        '<code data-role="redirect-uri">https://hub.example.com/oauth/callback/</code>' in start_page.content.decode()
    )
    answer = hub_client.post(reverse("oauth:start", args=["bamboo_oauth"]), HTTP_HOST="localhost:9999")
    assert query(answer["Location"])["redirect_uri"] == "https://hub.example.com/oauth/callback/"
    # The code exchange later sends the same URI, whatever host the callback arrives on.
    assert {flow["redirect_uri"] for flow in hub_client.session[SESSION_FLOWS].values()} == {
        "http://testserver/oauth/callback/",
        "https://hub.example.com/oauth/callback/",
    }


def test_without_a_public_url_the_authorization_does_not_start(
    hub_client: Client, make_integration: Any, settings: Any, authserver: AuthServer
) -> None:
    make_integration()
    settings.HUB_PUBLIC_URL = ""
    response = hub_client.post(reverse("oauth:start", args=["bamboo_oauth"]))
    html = response.content.decode()
    assert response.status_code == 400 and 'data-reason="no_public_url"' in html and "HUB_PUBLIC_URL" in html
    assert not hub_client.session.get(SESSION_FLOWS)


def test_details_and_wizard_show_the_redirect_uri_and_the_token_times(
    hub_client: Client, make_integration: Any, settings: Any
) -> None:
    settings.HUB_PUBLIC_URL = "https://hub.example.com"
    integration = make_integration(
        token={"access_token": "at-secret-value", "refresh_token": "rt-secret-value", "expires_at": 2_000_000_000}
    )
    page = hub_client.get(f"/integrations/{integration.pk}").content.decode()
    assert '<code data-role="redirect-uri">https://hub.example.com/oauth/callback/</code>' in page
    assert '<time datetime="2033-05-18T03:33:20+00:00">2033-05-18 03:33:20 UTC</time>' in page
    assert '<dd data-role="last-refresh">never</dd>' in page
    assert "at-secret-value" not in page and "rt-secret-value" not in page
    wizard = hub_client.get("/integrations/new").content.decode()
    assert '<code data-role="redirect-uri">https://hub.example.com/oauth/callback/</code>' in wizard


def test_details_page_offers_reconnect_and_shows_the_last_refresh(
    hub_client: Client, make_integration: Any, authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    from integrations.services import token_provider_for
    from tests.integrations.oauth.conftest import authorized_token

    token = authorized_token(authserver, provider_browser)
    integration = make_integration(token=token | {"expires_at": int(time.time()) - 1})
    token_provider_for(integration).get_token()  # a real refresh, recorded as an event
    page = hub_client.get(f"/integrations/{integration.pk}").content.decode()
    refreshed = IntegrationEvent.objects.get(integration_ref=integration.pk, type=EventType.TOKEN_REFRESH)
    assert f'<time datetime="{refreshed.created_at.isoformat()}' in page.split('data-role="last-refresh"')[1]
    assert '<div data-role="reconnect" hidden>' in page

    Integration.objects.filter(pk=integration.pk).update(status=Status.RECONNECT_REQUIRED)
    page = hub_client.get(f"/integrations/{integration.pk}").content.decode()
    reconnect = page.split('<div data-role="reconnect">')[1].split("</div>")[0]
    assert f'href="{reverse("oauth:start", args=[integration.pk])}"' in reconnect and "Reconnect" in reconnect
