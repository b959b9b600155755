"""A small, separate Django project: django-oauth-toolkit as the OAuth2 authorization server the hub talks to.

It runs in its own process (``python -m tests.integrations.oauth.authserver.serve``) with its own SQLite file, so the
hub's code reaches it only over HTTP on loopback, like a real provider.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

SECRET_KEY = "authserver-test-only-secret-key-not-the-hub"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
]

MIDDLEWARE = [
    "tests.integrations.oauth.authserver.counting.CountTokenRequestsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "tests.integrations.oauth.authserver.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["AUTHSERVER_DB"],
        # Threads of the server write tokens concurrently: wait for the lock instead of failing.
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGIN_URL = "/accounts/login/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Read", "write": "Write", "offline_access": "Refresh tokens"},
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("AUTHSERVER_TOKEN_SECONDS", "3600")),
    # What the issue asks the server to enforce: PKCE (S256 only) on every authorization code,
    # and refresh-token rotation where reusing a rotated token is refused (and revokes the family).
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
}

# OpenID Connect (the strict server): discovery at /o/.well-known/openid-configuration, id_tokens signed
# RS256 with a key made for this process, published at /o/.well-known/jwks.json.
if os.environ.get("AUTHSERVER_OIDC") == "1":
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    _key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    OAUTH2_PROVIDER |= {
        "OIDC_ENABLED": True,
        "OIDC_RSA_PRIVATE_KEY": _key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "SCOPES": OAUTH2_PROVIDER["SCOPES"] | {"openid": "OpenID Connect"},  # type: ignore[operator]
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "WARNING"},
}
