"""Who may call which tool on which integration (``Principal.check_tool`` and ``Principal.check``), on
their own: each refusal names its rule, and what a caller may write follows its grant (issue 26)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from integrations.agents.models import AgentProfile
from integrations.tools import catalog
from integrations.tools.errors import ToolError
from integrations.tools.invocation import Principal
from integrations.tools.models import AgentToken
from tests import factories

pytestmark = pytest.mark.django_db


def _tool(name: str) -> catalog.Tool:
    tool = catalog.get(name)
    assert tool is not None and tool.access == ("write" if name.startswith("create") else "read")
    return tool


READ_TOOL = _tool("query_hris")
WRITE_TOOL = _tool("create_hris_record")


@pytest.fixture
def hr_pair():
    return factories.bamboohr(name="HR A"), factories.bamboohr(name="HR B")


def _token(*grants: tuple[object, str], tools: list[str] | None = None, name: str = "bot") -> AgentToken:
    profile = AgentProfile.objects.create(name=factories.unique("profile"), tools=tools)
    for integration, access in grants:
        profile.grants.create(integration=integration, access=access)
    token, _raw = AgentToken.issue(name=name, profile=profile)
    return token


def _refusal(call) -> str:
    with pytest.raises(ToolError) as info:
        call()
    assert info.value.category == "permission"
    return info.value.message


def test_a_read_grant_allows_reading_there_only_and_refuses_writing(hr_pair) -> None:
    a, b = hr_pair
    token = _token((a, "read"))
    principal = Principal.for_token(token)
    assert principal.check(READ_TOOL, a.id) is False  # allowed, and may not write
    message = _refusal(lambda: principal.check(WRITE_TOOL, a.id))
    assert message == f"create_hris_record writes: this token's grant on {a.id!r} is read-only"
    name = token.profile.name
    message = _refusal(lambda: principal.check(READ_TOOL, b.id))
    assert message == f"this token may not use integration {b.id!r}: profile {name!r} has no grant on it"


def test_a_write_grant_allows_writing(hr_pair) -> None:
    a, _b = hr_pair
    principal = Principal.for_token(_token((a, "write")))
    assert principal.check(WRITE_TOOL, a.id) is True
    assert principal.check(READ_TOOL, a.id) is True  # a reading tool still learns it may write (SQL)


def test_a_revoked_or_expired_token_is_refused_whatever_its_grants(hr_pair) -> None:
    a, _b = hr_pair
    revoked = _token((a, "write"))
    revoked.revoked_at = timezone.now()
    expired = _token((a, "write"))
    expired.expires_at = timezone.now() - dt.timedelta(seconds=1)
    for token in (revoked, expired):
        message = _refusal(lambda token=token: Principal.for_token(token).check(READ_TOOL, a.id))
        assert message == "this token is revoked or expired"


def test_staff_may_read_and_write_everywhere_other_users_nowhere(hr_pair) -> None:
    a, _b = hr_pair
    assert Principal.for_user(factories.staff(factories.unique("staff"))).check(WRITE_TOOL, a.id) is True
    for user in (
        factories.user(factories.unique("clerk")),
        factories.staff(factories.unique("gone"), is_active=False),
    ):
        message = _refusal(lambda user=user: Principal.for_user(user).check(READ_TOOL, a.id))
        assert message == "tool calls need an agent token or a staff account"
    assert Principal.local().check(WRITE_TOOL, a.id) is True  # trusted Python code in this process


def test_a_tool_outside_the_profile_is_refused_naming_the_profile_and_its_tools(hr_pair) -> None:
    a, _b = hr_pair
    token = _token((a, "write"), tools=["query_hris", "describe_access"])
    principal = Principal.for_token(token)
    principal.check_tool(READ_TOOL)
    message = _refusal(lambda: principal.check_tool(WRITE_TOOL))
    assert message == (
        f"profile {token.profile.name!r} does not allow the tool 'create_hris_record' "
        "(its tools: describe_access, query_hris)"
    )
    no_tools = _token((a, "write"), tools=[])
    message = _refusal(lambda: Principal.for_token(no_tools).check_tool(READ_TOOL))
    assert message.endswith("(its tools: none)")
    Principal.for_token(_token((a, "read"))).check_tool(WRITE_TOOL)  # no tool list: every tool
    Principal.for_user(factories.staff(factories.unique("staff"))).check_tool(WRITE_TOOL)
