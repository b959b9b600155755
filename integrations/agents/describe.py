"""The ``describe_access`` tool: what the caller's profile allows, so an agent can plan."""

from __future__ import annotations

from typing import Any

import integrations.tools.catalog as catalog
from connectors.datapolicy.hris_fields import BAMBOOHR_EMPLOYEES, EMPLOYEES, TIME_OFF, FieldCatalog
from integrations.agents import quotas
from integrations.agents.access import AgentAccess, Grant, HrisRules, Quotas
from integrations.models import Integration


def _fields(rules: HrisRules, fields: FieldCatalog) -> dict[str, list[str]]:
    merged = fields.with_classes(rules.field_classes) if rules.field_classes else fields
    allowed = sorted(name for name in merged.classes if rules.access.allows(name, merged))
    withheld = sorted(name for name in merged.classes if name not in allowed)
    return {"allowed": allowed, "withheld": withheld}


def _grant(grant: Grant, integration: Integration | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": grant.integration_id,
        "name": integration.name if integration else None,
        "kind": integration.kind if integration else None,
        "access": "write" if grant.write else "read",
    }
    if grant.hris is not None:
        rules = grant.hris
        out["hris"] = {
            "classes": sorted(str(c) for c in rules.access.classes),
            "named_fields": sorted(rules.access.fields),
            # The provider-neutral records' fields, and BambooHR's own names (custom fields included).
            "employee_fields": _fields(rules, EMPLOYEES),
            "time_off_fields": _fields(rules, TIME_OFF),
            "provider_fields": _fields(rules, BAMBOOHR_EMPLOYEES),
            "record_scope": rules.scope.as_dict() if rules.scope is not None else None,
            "redaction": list(rules.redaction.entities) if rules.redaction is not None else None,
            "pseudonymize": rules.pseudonymize,
        }
    if grant.database is not None:
        allow = grant.database.allow
        out["database"] = {
            "tables": None if allow is None else {t: (c if c == "*" else list(c)) for t, c in allow.items()},
            "role": grant.database.role,
        }
    return out


def describe_access(access: AgentAccess | None) -> dict[str, Any]:
    """``access`` None: an unrestricted caller (staff, trusted Python)."""
    if access is None:
        return {
            "profile": None,
            "tools": catalog.names(),
            "integrations": [
                {"id": i.pk, "name": i.name, "kind": i.kind, "access": "write"} for i in Integration.objects.all()
            ],
            "quotas": quotas.remaining(None, Quotas()),
        }
    found = {i.pk: i for i in Integration.objects.filter(pk__in=list(access.grants))}
    return {
        "profile": access.profile_name,
        "tools": [name for name in catalog.names() if access.may_use_tool(name)],
        "integrations": [_grant(g, found.get(i)) for i, g in sorted(access.grants.items())],
        "quotas": quotas.remaining(access.quota_key, access.quotas),
    }
