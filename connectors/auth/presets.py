"""OAuth2 presets: the endpoint URLs of known providers, which an operator would otherwise have to look up.

A preset fills in a config; the stored config always carries explicit URLs, so a preset change never
moves a live one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.errors import Category, ConnectorError


@dataclass(frozen=True)
class OAuth2Preset:
    label: str
    authorize_url: str
    token_url: str
    params: tuple[str, ...] = ()  # placeholders in the URLs, e.g. the company subdomain
    scopes: tuple[str, ...] = ()
    token_endpoint_auth_method: str = "client_secret_basic"
    help: str = ""


PRESETS: dict[str, OAuth2Preset] = {
    "bamboohr": OAuth2Preset(
        label="BambooHR",
        authorize_url="https://{subdomain}.bamboohr.com/authorize.php",
        token_url="https://{subdomain}.bamboohr.com/token.php?request=token",
        params=("subdomain",),
        # offline_access: BambooHR issues a refresh token only with it. No openid: BambooHR documents no
        # discovery document or JWKS (its OAuth 2.0 documentation), so its id_token could not be
        # checked, and the hub has no use for one; an operator whose tenant publishes an issuer can add
        # openid with oauth2.issuer, and the id_token is then validated.
        scopes=("offline_access", "employee", "employee_directory"),
        token_endpoint_auth_method="client_secret_post",
        help="Register the app at developers.bamboohr.com; the redirect URI must match exactly.",
    ),
}


def preset_config(name: str, **params: str) -> dict[str, Any]:
    """The non-secret OAuth2 settings a preset gives (without client_id): URLs, scopes, auth method."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ConnectorError(
            f"unknown OAuth2 preset {name!r}; known: {', '.join(PRESETS)}", category=Category.CONFIG
        ) from None
    missing = [p for p in preset.params if not params.get(p)]
    if missing:
        raise ConnectorError(f"OAuth2 preset {name!r} needs: {', '.join(missing)}", category=Category.CONFIG)
    values = {p: params[p] for p in preset.params}
    return {
        "authorize_url": preset.authorize_url.format(**values),
        "token_url": preset.token_url.format(**values),
        "scopes": list(preset.scopes),
        "grant_type": "authorization_code",
        "token_endpoint_auth_method": preset.token_endpoint_auth_method,
    }
