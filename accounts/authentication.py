"""``Authorization: Token <token>``: django-rest-knox tokens (only a SHA-512 of each is stored, with an
expiry), throttled per address after repeated failures (``accounts.throttle``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from accounts.throttle import FailureThrottledAuthentication


class APITokenAuthentication(FailureThrottledAuthentication, TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, token: bytes) -> Any:
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:  # knox would let this become a 500
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class APITokenScheme(KnoxTokenScheme):
    """Documents API tokens in the OpenAPI schema (drf-spectacular finds it by subclassing)."""

    target_class = "accounts.authentication.APITokenAuthentication"
    name = "apiToken"
