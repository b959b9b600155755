"""OAuth2 helper over Authlib (a helper, not a base-class layer).

The non-secret settings live in an integration's config under ``oauth2``; the client secret lives in
credentials under ``client_secret`` and the token set (access, refresh, expiry) under ``oauth_token``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OAuth2Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    authorize_url: str | None = Field(None, description="Authorization endpoint (authorization_code grant).")
    token_url: str = Field(min_length=1, description="Token endpoint.")
    scopes: list[str] = Field(default_factory=list)
    grant_type: Literal["authorization_code", "client_credentials"] = "authorization_code"
    # Refresh this many seconds before expiry (BambooHR's SDK uses 5 minutes).
    refresh_margin_seconds: int = Field(300, ge=0)
