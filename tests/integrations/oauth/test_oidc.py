"""OpenID Connect against the strict provider (django-oauth-toolkit with OIDC on: discovery, RS256
id_tokens): discovery under the network policy, and id_token validation that accepts a good token and
refuses a wrong aud, iss, nonce or an expired one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from joserfc import jwt

from connectors.auth.oauth2 import authorization_request, exchange_code
from connectors.auth.oidc import discover, fetch_jwks, validate_id_token
from connectors.errors import ConnectorError
from connectors.policy import TargetPolicy
from integrations.models import Integration, Status
from tests.connectors.policies import LOOPBACK
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import AuthServer, ProviderBrowser, query

REDIRECT = clients.HUB_REDIRECT_URI


def openid_config(server: AuthServer) -> Any:
    return server.code_config(issuer=server.issuer, scopes=["openid", "read"])


def authorize_openid(server: AuthServer, browser: ProviderBrowser, nonce: str) -> tuple[str, str]:
    request = authorization_request(
        openid_config(server), redirect_uri=REDIRECT, state="oidc", policy=LOOPBACK, nonce=nonce
    )
    assert query(request.url)["nonce"] == nonce
    return query(browser.authorize(request.url))["code"], request.code_verifier


def raw_token_answer(server: AuthServer, browser: ProviderBrowser, nonce: str) -> dict[str, Any]:
    """The provider's token answer as it comes (with its id_token), for the validation tests."""
    code, verifier = authorize_openid(server, browser, nonce)
    answer = httpx.post(
        server.token_url,
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT},
        auth=(clients.CODE_CLIENT_ID, clients.CODE_CLIENT_SECRET),
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()


def test_discovery_reads_the_issuer_and_checks_its_urls_under_the_policy(strict_authserver: AuthServer) -> None:
    metadata = discover(strict_authserver.issuer, policy=LOOPBACK)
    assert metadata["issuer"] == strict_authserver.issuer
    assert metadata["token_endpoint"] == strict_authserver.token_url
    assert metadata["authorization_endpoint"] == strict_authserver.authorize_url
    assert fetch_jwks(metadata["jwks_uri"], policy=LOOPBACK)["keys"][0]["kty"] == "RSA"
    with pytest.raises(ConnectorError, match="loopback"):  # the default policy: no loopback
        discover(strict_authserver.issuer, policy=TargetPolicy())
    with pytest.raises(ConnectorError, match="another issuer"):
        discover(strict_authserver.issuer + "/", policy=LOOPBACK)


def test_id_token_validation_accepts_a_good_token_and_refuses_wrong_aud_iss_nonce_or_expired(
    strict_authserver: AuthServer, strict_browser: ProviderBrowser
) -> None:
    answer = raw_token_answer(strict_authserver, strict_browser, nonce="n-0123456789")
    jwks = fetch_jwks(discover(strict_authserver.issuer, policy=LOOPBACK)["jwks_uri"], policy=LOOPBACK)
    good = {
        "jwks": jwks,
        "issuer": strict_authserver.issuer,
        "client_id": clients.CODE_CLIENT_ID,
        "nonce": "n-0123456789",
        "access_token": answer["access_token"],
    }
    claims = validate_id_token(answer["id_token"], **good)
    assert claims["sub"] and claims["aud"] == clients.CODE_CLIENT_ID

    refusals = {
        "aud": good | {"client_id": "another-client"},
        "iss": good | {"issuer": strict_authserver.url + "/other"},
        "nonce": good | {"nonce": "n-replayed"},
    }
    for claim, params in refusals.items():
        with pytest.raises(ConnectorError, match=rf"id_token was refused: .*\({claim}\)") as refused:
            validate_id_token(answer["id_token"], **params)
        assert refused.value.category == "auth" and answer["id_token"] not in refused.value.message
    expires = jwt.decode(answer["id_token"], _key_set(jwks)).claims["exp"]
    with pytest.raises(ConnectorError, match="id_token was refused: expired"):
        validate_id_token(answer["id_token"], **good, now=expires + 61)  # past the 60 s leeway
    with pytest.raises(ConnectorError, match="id_token was refused"):  # signed by someone else
        validate_id_token(answer["id_token"], **good | {"jwks": _other_jwks()})


def test_exchange_refuses_a_wrong_nonce_and_stores_nothing(
    strict_authserver: AuthServer, strict_browser: ProviderBrowser
) -> None:
    code, verifier = authorize_openid(strict_authserver, strict_browser, nonce="n-sent")
    with pytest.raises(ConnectorError, match=r"\(nonce\)"):
        exchange_code(
            openid_config(strict_authserver),
            clients.CODE_CLIENT_SECRET,
            code=code,
            code_verifier=verifier,
            redirect_uri=REDIRECT,
            policy=LOOPBACK,
            nonce="n-other",
        )


@pytest.mark.django_db
def test_the_hub_flow_sends_a_nonce_and_checks_the_id_token(
    strict_authserver: AuthServer, strict_browser: ProviderBrowser, make_strict_integration: Any, hub_client: Client
) -> None:
    make_strict_integration("openid", issuer=strict_authserver.issuer, scopes=["openid", "read"])
    authorize_url = hub_client.post(reverse("oauth:start", args=["openid"]))["Location"]
    assert len(query(authorize_url)["nonce"]) >= 32
    redirect = strict_browser.authorize(authorize_url)
    response = hub_client.get(redirect.removeprefix("http://testserver"))
    assert response.status_code == 200, response.content[:500]
    integration = Integration.objects.get(pk="openid")
    assert integration.status == Status.CONNECTED
    assert integration.credentials["oauth_token"]["subject"]
    assert "id_token" not in integration.credentials["oauth_token"]


def _key_set(jwks: dict[str, Any]) -> Any:
    from joserfc.jwk import KeySet

    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def _other_jwks() -> dict[str, Any]:
    from joserfc.jwk import RSAKey

    return {"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}
