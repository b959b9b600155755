"""The OAuth2 authorization server on loopback (django-oauth-toolkit in its own process) and helpers
that act as the user's browser at that provider."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.auth.oauth2 import OAuth2Config, authorization_request, exchange_code
from tests import factories
from tests.connectors.policies import LOOPBACK
from tests.integrations.oauth.authserver import clients

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class AuthServer:
    url: str
    process: subprocess.Popen[str]

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/o/authorize/"

    @property
    def token_url(self) -> str:
        return f"{self.url}/o/token/"

    def code_config(self, **overrides: Any) -> OAuth2Config:
        values: dict[str, Any] = {
            "client_id": clients.CODE_CLIENT_ID,
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "scopes": ["read", "write"],
            "grant_type": "authorization_code",
        }
        return OAuth2Config(**(values | overrides))

    def cc_config(self, **overrides: Any) -> OAuth2Config:
        values: dict[str, Any] = {
            "client_id": clients.CC_CLIENT_ID,
            "token_url": self.token_url,
            "scopes": ["read"],
            "grant_type": "client_credentials",
        }
        return OAuth2Config(**(values | overrides))

    @property
    def issuer(self) -> str:
        """The OpenID Connect issuer (the strict server only)."""
        return f"{self.url}/o"

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/test/stats", timeout=10).json()

    def reset_stats(self) -> None:
        httpx.post(f"{self.url}/test/stats", timeout=10).raise_for_status()

    def resource(self, access_token: str) -> httpx.Response:
        """A call to the provider's protected API with the bearer token."""
        return httpx.get(f"{self.url}/api/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)

    def expire(self, access_token: str) -> None:
        """Make the access token expire now at the provider: from then on its API answers 401."""
        answer = httpx.post(f"{self.url}/test/expire", data={"token": access_token}, timeout=10)
        assert answer.json() == {"expired": 1}

    def refuse_api(self, on: bool = True) -> None:
        """From now on (until ``refuse_api(False)``) the provider's API answers 401 even to fresh tokens."""
        httpx.post(f"{self.url}/test/refuse", data={"on": "1" if on else "0"}, timeout=10).raise_for_status()

    def revoke(
        self, token: str, client_id: str = clients.CODE_CLIENT_ID, client_secret: str = clients.CODE_CLIENT_SECRET
    ) -> None:
        """RFC 7009 revocation at the provider: what an admin revoking the app's access does."""
        response = httpx.post(
            f"{self.url}/o/revoke_token/", data={"token": token}, auth=(client_id, client_secret), timeout=10
        )
        response.raise_for_status()


def _serve(directory: Path, token_seconds: int | None = None, *, oidc: bool = False) -> Iterator[AuthServer]:
    db = directory / "provider.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    if token_seconds is not None:
        env["AUTHSERVER_TOKEN_SECONDS"] = str(token_seconds)
    if oidc:
        env["AUTHSERVER_OIDC"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.oauth.authserver.serve", str(db)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(process, timeout=60)
        port = json.loads(line)["port"]
        yield AuthServer(url=f"http://127.0.0.1:{port}", process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def authserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    yield from _serve(tmp_path_factory.mktemp("authserver"))


STRICT_TOKEN_SECONDS = 5


@pytest.fixture(scope="session")
def strict_authserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """The same provider configured the strict way: 5-second access tokens, single-use rotating
    refresh tokens (reuse refused and the family revoked, no grace period), and OpenID Connect (issuer
    ``{url}/o``: discovery, RS256 id_tokens)."""
    yield from _serve(tmp_path_factory.mktemp("strict_authserver"), STRICT_TOKEN_SECONDS, oidc=True)


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        process.kill()
        raise RuntimeError(f"the test authorization server did not start: {process.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    return result[0]


@pytest.fixture(autouse=True)
def _fresh_counters(request: pytest.FixtureRequest) -> None:
    for name in ("authserver", "strict_authserver"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset_stats()


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("type") == "hidden" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""  # type: ignore[index]


def _hidden_fields(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html)
    return parser.fields


class ProviderBrowser:
    """The user's browser at the provider: logs in there and answers the consent screen."""

    def __init__(self, server: AuthServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=15, follow_redirects=False)

    def login(self, username: str = clients.PROVIDER_USER, password: str = clients.PROVIDER_PASSWORD) -> None:
        page = self.http.get("/accounts/login/")
        page.raise_for_status()
        fields = _hidden_fields(page.text) | {"username": username, "password": password}
        answer = self.http.post(
            "/accounts/login/", data=fields, headers={"Referer": f"{self.server.url}/accounts/login/"}
        )
        assert answer.status_code == 302, f"provider login failed: {answer.status_code}"

    def consent_page(self, authorize_url: str) -> httpx.Response:
        return self.http.get(authorize_url)

    def authorize(self, authorize_url: str, *, allow: bool = True) -> str:
        """Open the authorize URL, approve (or deny) and return where the provider redirects the browser."""
        page = self.consent_page(authorize_url)
        assert page.status_code == 200, f"consent page: HTTP {page.status_code} {page.headers.get('location', '')}"
        assert 'id="authorizationForm"' in page.text, "the provider showed an error instead of the consent form"
        fields = _hidden_fields(page.text)
        if allow:
            fields["allow"] = "Authorize"
        answer = self.http.post(urlsplit(authorize_url).path, data=fields, headers={"Referer": authorize_url})
        assert answer.status_code == 302, f"consent answer: HTTP {answer.status_code}"
        return answer.headers["location"]

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def provider_browser(authserver: AuthServer) -> Iterator[ProviderBrowser]:
    browser = ProviderBrowser(authserver)
    browser.login()
    yield browser
    browser.close()


@pytest.fixture
def strict_browser(strict_authserver: AuthServer) -> Iterator[ProviderBrowser]:
    browser = ProviderBrowser(strict_authserver)
    browser.login()
    yield browser
    browser.close()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorized_token(authserver: AuthServer, browser: ProviderBrowser, state: str = "t") -> dict[str, Any]:
    """A real token set from the authorization server: the code flow with PKCE, driven by ``browser``."""
    request = authorization_request(
        authserver.code_config(), redirect_uri=clients.HUB_REDIRECT_URI, state=state, policy=LOOPBACK
    )
    code = query(browser.authorize(request.url))["code"]
    return exchange_code(
        authserver.code_config(),
        clients.CODE_CLIENT_SECRET,
        code=code,
        code_verifier=request.code_verifier,
        redirect_uri=clients.HUB_REDIRECT_URI,
        policy=LOOPBACK,
    )


class MemoryStore:
    """A TokenStore kept in this process (for tests of the provider logic against the real server)."""

    def __init__(self, token: dict[str, Any] | None = None) -> None:
        self.token = token
        self.saves = 0
        self._lock = threading.Lock()

    def load(self) -> dict[str, Any] | None:
        return dict(self.token) if self.token else None

    def save(self, token: dict[str, Any] | None) -> None:
        self.saves += 1
        self.token = dict(token) if token else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


TOKEN_RE = re.compile(r"[A-Za-z0-9]{20,}")


# ---------------------------------------------------------------------------------------------
# The hub side


@pytest.fixture
def hub_user(django_user_model: Any) -> Any:
    return factories.user("operator", password="operator-password-1")


@pytest.fixture
def hub_client(client: Any, hub_user: Any) -> Any:
    client.force_login(hub_user)
    return client


def _integration_factory(server: AuthServer, hub_user: Any) -> Any:
    from integrations.models import Integration

    def make(
        id: str = "bamboo_oauth",
        *,
        grant: str = "authorization_code",
        owner: Any = hub_user,
        token: dict[str, Any] | None = None,
        **config_overrides: Any,
    ) -> Integration:
        if grant == "client_credentials":
            oauth2 = server.cc_config(**config_overrides).model_dump()
            credentials: dict[str, Any] = {"client_secret": clients.CC_CLIENT_SECRET}
        else:
            oauth2 = server.code_config(**config_overrides).model_dump()
            credentials = {"client_secret": clients.CODE_CLIENT_SECRET}
        if token:
            credentials["oauth_token"] = token
        return Integration.objects.create(
            id=id,
            name="BambooHR (OAuth2)",
            kind="bamboohr",
            auth_type="oauth2",
            config={"subdomain": "acme", "oauth2": oauth2},
            credentials=credentials,
            owner=owner,
        )

    return make


@pytest.fixture
def make_integration(authserver: AuthServer, hub_user: Any) -> Any:
    return _integration_factory(authserver, hub_user)


@pytest.fixture
def make_strict_integration(strict_authserver: AuthServer, hub_user: Any) -> Any:
    return _integration_factory(strict_authserver, hub_user)
