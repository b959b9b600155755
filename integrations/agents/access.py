"""What one agent may reach, as plain values: the bridge between agent profiles (rows) and the tools.

An ``AgentAccess`` is built once per call from the caller's token and profile (``integrations.agents``
builds it; the tools only read it). ``None`` where a tool expects one means an unrestricted caller
(staff), which keeps today's behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.datapolicy.hris_fields import FieldAccess
from connectors.datapolicy.hris_scope import RecordScope
from connectors.datapolicy.pii import RedactionPolicy  # presidio is imported only by a Redactor
from connectors.db.sqlite_authorizer import AllowList


@dataclass(frozen=True)
class HrisRules:
    """Field and record rules for one HRIS integration."""

    access: FieldAccess
    # Custom fields the operator classed (field alias -> class name); an unclassed one is restricted.
    field_classes: Mapping[str, str] = field(default_factory=dict)
    scope: RecordScope | None = None
    redaction: RedactionPolicy | None = None  # free-text fields pass through it when set
    pseudonymize: bool = False  # employee ids and e-mails become keyed pseudonyms


@dataclass(frozen=True)
class DatabaseRules:
    """Table and column rules for one database integration."""

    allow: AllowList | None = None  # None: every table and column the connection can read
    role: str | None = None  # PostgreSQL role / MariaDB role the agent's queries run as


@dataclass(frozen=True)
class Grant:
    integration_id: str
    write: bool
    hris: HrisRules | None = None
    database: DatabaseRules | None = None


@dataclass(frozen=True)
class Quotas:
    calls_per_minute: int | None = None
    rows_per_day: int | None = None
    writes_per_day: int | None = None


@dataclass(frozen=True)
class AgentAccess:
    profile_id: int | None
    profile_name: str
    tools: frozenset[str] | None  # None: every tool of the catalog
    grants: Mapping[str, Grant]  # integration id -> what the agent may do there
    quotas: Quotas = field(default_factory=Quotas)
    # Names this profile's quota counters in Redis: the id and the creation time, so that a profile made
    # later with a reused id (SQLite reuses them) starts with fresh counters.
    quota_key: str = ""

    def may_use_tool(self, name: str) -> bool:
        return self.tools is None or name in self.tools

    def grant_for(self, integration_id: str) -> Grant | None:
        return self.grants.get(integration_id)
