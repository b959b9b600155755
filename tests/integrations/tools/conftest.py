"""Fixtures for the agent tools under a profile's data policy (the sandbox, integrations, tokens and the
REST client come from tests/integrations/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def policed_ctx() -> Callable[..., Any]:
    """A ToolContext for ``integration`` with one grant, as the caller's profile would give it."""
    from integrations.agents.access import AgentAccess, Grant
    from integrations.tools.context import ToolContext

    def make(integration: Any, *, write: bool = False, hris: Any = None, database: Any = None) -> Any:
        grant = Grant(integration_id=integration.id, write=write, hris=hris, database=database)
        access = AgentAccess(profile_id=None, profile_name="test", tools=None, grants={integration.id: grant})
        return ToolContext(integration=integration, may_write=write, actor="token:test", access=access, grant=grant)

    return make
