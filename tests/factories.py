"""Factories for what the tests set up again and again: users (staff, ordinary, in a group), API tokens,
agent tokens and integrations of each kind. Plain functions; each creates its rows the way the hub does
(users through Django's manager, API tokens through knox as `create_api_token` does, agent tokens through
``AgentToken.issue``, integrations through the services layer), so a test sets up nothing the hub could not.

Import inside a test or a fixture that has database access (``db`` / ``transactional_db``)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, User

    from integrations.models import Integration
    from integrations.tools.models import AgentToken
    from sandbox.bamboohr import BambooHRSandbox


def unique(prefix: str) -> str:
    """An id no other test (or test run sharing the servers) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------------------------- users
def password_for(username: str) -> str:
    """The password ``user`` gives ``username`` unless told otherwise."""
    return f"pw-{username}-123"


def user(
    username: str, *, password: str | None = None, staff: bool = False, groups: tuple[Group, ...] = (), **fields: Any
) -> User:
    """A user who can log in with ``password`` (default ``password_for(username)``)."""
    from django.contrib.auth import get_user_model

    made = get_user_model().objects.create_user(
        username, password=password or password_for(username), is_staff=staff, **fields
    )
    if groups:
        made.groups.add(*groups)
    return made


def staff(username: str = "staff", **fields: Any) -> User:
    return user(username, staff=True, **fields)


def group(name: str) -> Group:
    from django.contrib.auth.models import Group

    return Group.objects.create(name=name)


# ---------------------------------------------------------------------------------------------- tokens
def api_token(owner: User, **fields: Any) -> str:
    """A personal API token of ``owner`` (knox, as ``manage.py create_api_token`` makes it): the raw value.
    Without ``expiry`` it lasts knox's ``TOKEN_TTL``."""
    from knox.models import AuthToken

    return AuthToken.objects.create(owner, **fields)[1]


def agent_token(
    *integrations: Integration, access: str = "read", name: str = "agent", **fields: Any
) -> tuple[AgentToken, str]:
    """An agent token for ``integrations`` (``AgentToken.issue``): the row and the raw value."""
    from integrations.tools.models import AgentToken

    return AgentToken.issue(name=name, access=access, integrations=list(integrations), **fields)


# -------------------------------------------------------------------------------------------- integrations
def _create(*, connect: bool, actor: str, **fields: Any) -> Integration:
    from integrations import services

    integration = services.create_integration(actor=actor, **fields)
    if connect:
        result = services.connect(integration.id)
        assert result["ok"], result
        integration.refresh_from_db()
    return integration


def bamboohr(
    id: str | None = None,
    *,
    sandbox: BambooHRSandbox | None = None,
    api_key: str | None = None,
    name: str = "HR",
    config: dict[str, Any] | None = None,
    connect: bool = False,
    actor: str = "tests",
    **fields: Any,
) -> Integration:
    """A BambooHR integration with an API key. With ``sandbox``: pointed at that BambooHR sandbox on
    loopback, with its key; without: company ``acme`` on BambooHR's cloud (nothing is contacted unless
    ``connect``). ``config`` adds to (or overrides) those settings."""
    settings: dict[str, Any] = {"subdomain": "acme"}
    if sandbox is not None:
        settings = {"subdomain": sandbox.company.name, "base_url": sandbox.url, "allow_insecure_loopback": True}
    settings.update(config or {})
    key = api_key if api_key is not None else (sandbox.api_key if sandbox is not None else "0" * 40)
    return _create(
        connect=connect,
        actor=actor,
        id=id or unique("hr"),
        name=name,
        kind="bamboohr",
        auth_type="api_key",
        config=settings,
        credentials={"api_key": key},
        **fields,
    )


def database(
    kind: str,
    config: dict[str, Any],
    *,
    id: str | None = None,
    name: str | None = None,
    credentials: dict[str, str] | None = None,
    connect: bool = False,
    actor: str = "tests",
    **fields: Any,
) -> Integration:
    """A PostgreSQL, MySQL/MariaDB or SQLite integration with ``config`` (the test's server or file);
    ``credentials`` (user and password) make it ``basic`` auth, otherwise ``none``."""
    return _create(
        connect=connect,
        actor=actor,
        id=id or unique("db"),
        name=name or f"{kind} test",
        kind=kind,
        auth_type="basic" if credentials else "none",
        config=config,
        credentials=credentials,
        **fields,
    )
