"""Agent profiles (label ``agents``): what an agent token may reach, set by an operator.

A profile names the tools its agents may call, per integration read or read/write with the data rules
(HRIS fields and record scope, redaction; database tables and columns and role), and quotas. Every agent
token belongs to one profile (``integrations.tools.models.AgentToken.profile``).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from connectors.datapolicy.hris_fields import FieldClass

TOOLS_HELP = (
    'The tools its agents may call, as a JSON list of catalog names, e.g. ["query_hris", "describe_access"]. '
    "Empty (null): every tool of the catalog, including tools added later."
)
HRIS_HELP = (
    "HRIS rules as a JSON object (empty: every field and record). Keys: "
    '"classes": field classes allowed (public, internal, restricted, special); '
    '"fields": named fields allowed whatever their class (BambooHR or unified names); '
    '"scope": {"departments": [...], "divisions": [...], "locations": [...], "active_only": true, '
    '"reports_of": [manager ids], "indirect": true}; '
    '"redact": PII entities to mask in free text (true: the default set, or a list such as ["US_SSN", '
    '"IBAN_CODE"]); "pseudonymize": true for keyed pseudonyms of employee ids and e-mails.'
)
DATABASE_HELP = (
    "Database rules as a JSON object (empty: every table and column the connection can read). Keys: "
    '"tables": {"table": ["column", ...] or "*"}; "role": the PostgreSQL/MariaDB role agents\' queries run as.'
)


class AgentProfileQuerySet(models.QuerySet["AgentProfile"]):
    def visible_to(self, user: Any) -> AgentProfileQuerySet:
        """Staff see every profile; others only profiles whose every grant is on an integration they can see.

        A profile's page and API answer show its grants (integration ids, data rules): a profile with a grant
        on an integration the user cannot see would tell them of it.
        """
        from integrations.models import Integration

        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        hidden = Integration.objects.exclude(pk__in=Integration.objects.visible_to(user).values("pk"))
        return self.exclude(grants__integration__in=hidden)


class AgentProfile(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    tools = models.JSONField(null=True, blank=True, default=None, help_text=TOOLS_HELP)
    max_token_ttl = models.PositiveIntegerField(
        default=3600, help_text="Seconds: the longest life of a token minted from this profile."
    )
    calls_per_minute = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    rows_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Rows returned by queries per UTC day. Empty: no limit."
    )
    writes_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Writes per UTC day. Empty: no limit."
    )
    generated = models.BooleanField(
        default=False, editable=False, help_text="Made for one token (by the migration or create_agent_token)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AgentProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from integrations.agents.validation import unknown_tools

        unknown = unknown_tools(self.tools)
        if unknown:
            raise ValidationError({"tools": unknown})

    @classmethod
    def for_token_scope(cls, name: str, access: str, integrations: list[Any]) -> AgentProfile:
        """A generated profile with a token's old scope: its integrations, read or write, every tool."""
        base = f"token {name}"[:90]
        candidate, n = base, 1
        while cls.objects.filter(name=candidate).exists():
            n += 1
            candidate = f"{base} ({n})"
        profile = cls.objects.create(name=candidate, generated=True, max_token_ttl=86400 * 365)
        for integration in integrations:
            ProfileGrant.objects.create(profile=profile, integration=integration, access=access)
        return profile


class GrantAccess(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ProfileGrant(models.Model):
    profile = models.ForeignKey(AgentProfile, on_delete=models.CASCADE, related_name="grants")
    integration = models.ForeignKey("integrations.Integration", on_delete=models.CASCADE, related_name="agent_grants")
    access = models.CharField(max_length=8, choices=GrantAccess.choices, default=GrantAccess.READ)
    hris = models.JSONField(default=dict, blank=True, help_text=HRIS_HELP)
    database = models.JSONField(default=dict, blank=True, help_text=DATABASE_HELP)

    class Meta:
        ordering = ["profile", "integration"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "integration"], name="agents_one_grant_per_integration")
        ]

    def __str__(self) -> str:
        return f"{self.profile}: {self.integration_id} ({self.access})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from integrations.agents.validation import validate_grant

        errors = validate_grant(self)
        if errors:
            raise ValidationError(errors)


class CustomFieldClass(models.Model):
    """The operator's class for one HRIS custom field (an unclassed custom field is restricted)."""

    integration = models.ForeignKey(
        "integrations.Integration", on_delete=models.CASCADE, related_name="custom_field_classes"
    )
    field = models.CharField(max_length=100, help_text="The field's alias, e.g. customShirtSize.")
    field_class = models.CharField(
        max_length=12, choices=[(c.value, c.value) for c in FieldClass], default=FieldClass.RESTRICTED.value
    )

    class Meta:
        ordering = ["integration", "field"]
        constraints = [models.UniqueConstraint(fields=["integration", "field"], name="agents_one_class_per_field")]

    def __str__(self) -> str:
        return f"{self.integration_id}.{self.field}: {self.field_class}"
