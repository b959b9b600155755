"""From rows to the plain values the tools read: ``access_for_token(token) -> AgentAccess``."""

from __future__ import annotations

from typing import Any

from connectors.datapolicy.hris_fields import FieldAccess
from connectors.datapolicy.hris_scope import RecordScope
from connectors.datapolicy.pii import RedactionPolicy
from integrations.agents.access import AgentAccess, DatabaseRules, Grant, HrisRules, Quotas
from integrations.agents.models import AgentProfile, CustomFieldClass, ProfileGrant


def _hris_rules(grant: ProfileGrant, classes: dict[str, str]) -> HrisRules:
    rules = grant.hris or {}
    scope = rules.get("scope") or {}
    redact = rules.get("redact", False)
    redaction = None
    if redact:  # a plain policy: presidio is imported only by a Redactor, where text is redacted
        redaction = RedactionPolicy() if redact is True else RedactionPolicy(entities=tuple(redact))
    if not rules.get("classes") and not rules.get("fields"):
        # No field rule: every class (today's behaviour for a grant without HRIS rules).
        access = FieldAccess.build(classes=["public", "internal", "restricted", "special"])
    else:
        access = FieldAccess.build(classes=rules.get("classes", ()), fields=rules.get("fields", ()))
    return HrisRules(
        access=access,
        field_classes=classes,
        scope=RecordScope.build(**scope) if scope else None,
        redaction=redaction,
        pseudonymize=bool(rules.get("pseudonymize", False)),
    )


def _database_rules(grant: ProfileGrant) -> DatabaseRules:
    rules = grant.database or {}
    return DatabaseRules(allow=rules.get("tables"), role=rules.get("role") or None)


def _build_grant(grant: ProfileGrant, classes: dict[str, str]) -> Grant:
    return Grant(
        integration_id=grant.integration_id,
        write=grant.access == "write",
        hris=_hris_rules(grant, classes) if grant.hris else None,
        database=_database_rules(grant) if grant.database else None,
    )


def access_for_profile(profile: AgentProfile) -> AgentAccess:
    grants = list(ProfileGrant.objects.filter(profile=profile).order_by("integration_id"))
    classes: dict[str, dict[str, str]] = {}
    hris_ids = [g.integration_id for g in grants if g.hris]
    for row in CustomFieldClass.objects.filter(integration_id__in=hris_ids):
        classes.setdefault(row.integration_id, {})[row.field] = row.field_class
    return AgentAccess(
        profile_id=profile.pk,
        profile_name=profile.name,
        tools=None if profile.tools is None else frozenset(profile.tools),
        grants={g.integration_id: _build_grant(g, classes.get(g.integration_id, {})) for g in grants},
        quotas=Quotas(
            calls_per_minute=profile.calls_per_minute,
            rows_per_day=profile.rows_per_day,
            writes_per_day=profile.writes_per_day,
        ),
        quota_key=quota_key(profile),
    )


def quota_key(profile: AgentProfile) -> str:
    return f"{profile.pk}-{int(profile.created_at.timestamp() * 1_000_000)}"


def access_for_token(token: Any) -> AgentAccess:
    """What this token's profile allows; a token without a profile (not migrated) keeps its old scope."""
    if token.profile_id is not None:
        return access_for_profile(token.profile)
    ids = sorted(token.integrations.values_list("id", flat=True))
    write = token.access == "write"
    return AgentAccess(
        profile_id=None,
        profile_name=f"token {token.name}",
        tools=None,
        grants={i: Grant(integration_id=i, write=write) for i in ids},
    )


def database_grants(integration_id: str) -> list[tuple[str, Grant]]:
    """(profile name, grant) for every profile with database rules on this integration (health checks
    read each one's role privileges)."""
    rows = ProfileGrant.objects.filter(integration_id=integration_id).exclude(database={}).select_related("profile")
    return [(g.profile.name, _build_grant(g, {})) for g in rows if g.database]
