"""OpenID Connect on top of the OAuth2 helper: discovery and id_token validation.

Discovery reads ``{issuer}/.well-known/openid-configuration`` through a transport that connects only
where the target policy allows, and every URL it names is checked under the same policy (https only;
http only to loopback) before anything is sent there. An id_token is checked with Authlib's OpenID
claims over joserfc: the signature against the issuer's JWKS, then iss, aud, exp/iat, nonce (and
at_hash when present). A refusal names the claim, never the token.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from connectors.errors import Category, ConnectorError
from connectors.http.transport import checked_transport
from connectors.policy import TargetPolicy

DISCOVERY_PATH = "/.well-known/openid-configuration"
# Asymmetric signatures only: an HS256 id_token would be signed with the client secret we also hold.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 60  # clock skew allowed on exp/iat


def _get_json(url: str, *, what: str, policy: TargetPolicy, timeout: float) -> dict[str, Any]:
    policy.check_url(url, what=what, https_only=True)
    try:
        with httpx.Client(
            transport=checked_transport(policy, verify=True), timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ConnectorError(f"cannot read the {what} ({type(exc).__name__})", category=Category.NETWORK) from None
    if response.status_code != 200:
        raise ConnectorError(
            f"the {what} answered HTTP {response.status_code}",
            category=Category.UNKNOWN if response.status_code >= 500 else Category.CONFIG,
        )
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ConnectorError(f"the {what} is not a JSON object", category=Category.CONFIG)
    return document


def discover(issuer: str, *, policy: TargetPolicy | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """The issuer's provider metadata; its issuer must be exactly ``issuer`` and its endpoints must pass
    the policy. Raises ConnectorError (config) saying which field is wrong."""
    policy = policy or TargetPolicy()
    metadata = _get_json(
        issuer.rstrip("/") + DISCOVERY_PATH, what="OpenID discovery document", policy=policy, timeout=timeout
    )
    if metadata.get("issuer") != issuer:
        raise ConnectorError(
            f"the OpenID discovery document names another issuer ({str(metadata.get('issuer'))[:200]!r})",
            category=Category.CONFIG,
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        url = metadata.get(name)
        if not isinstance(url, str) or not url:
            raise ConnectorError(f"the OpenID discovery document has no {name}", category=Category.CONFIG)
        policy.check_url(url, what=f"OpenID {name}", https_only=True)
    return metadata


def fetch_jwks(jwks_uri: str, *, policy: TargetPolicy | None = None, timeout: float = 10.0) -> dict[str, Any]:
    return _get_json(jwks_uri, what="OpenID JWKS", policy=policy or TargetPolicy(), timeout=timeout)


def validate_id_token(
    id_token: str | None,
    *,
    jwks: Mapping[str, Any],
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None = None,
    now: float | None = None,
    leeway: int = LEEWAY_SECONDS,
) -> dict[str, Any]:
    """The id_token's claims when its signature, iss, aud, exp/iat and nonce hold; else ConnectorError (auth)."""
    if not id_token:
        raise ConnectorError("the provider returned no id_token for an openid request", category=Category.AUTH)
    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(dict(jwks)), algorithms=ID_TOKEN_ALGORITHMS)  # type: ignore[arg-type]
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
            params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
        )
        claims.validate(now=int(time.time() if now is None else now), leeway=leeway)
    except JoseError as exc:
        claim = getattr(exc, "claim", None)
        reason = f"{exc.error} ({claim})" if claim else str(exc.error)
        raise ConnectorError(f"the id_token was refused: {reason}", category=Category.AUTH) from None
    except ValueError:  # not a JWT at all, or a JWKS that is not one
        raise ConnectorError("the id_token was refused: malformed", category=Category.AUTH) from None
    return dict(claims)
