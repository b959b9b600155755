"""Agent tokens, the audit trail of tool calls, and write intents (idempotency): the ``tools`` app.

The tables keep the names they had when these models belonged to the ``integrations`` app.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "hubat_"


def hash_token(raw: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough (no slow hash needed): a leak of the
    table gives nothing to brute-force, and lookup stays one indexed equality."""
    return hashlib.sha256(raw.encode()).hexdigest()


class Access(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class AgentTokenQuerySet(models.QuerySet["AgentToken"]):
    def active(self) -> AgentTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AgentToken(models.Model):
    """An API token for an agent, scoped to some integrations and to read or write.

    Only the SHA-256 of the token is stored; the token itself is shown once, when it is created.
    """

    name = models.CharField(max_length=100, help_text="Who or what uses it, e.g. 'hr-assistant'.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters, to recognise a token in lists without storing it.
    token_prefix = models.CharField(max_length=16, editable=False)
    access = models.CharField(max_length=8, choices=Access.choices, default=Access.READ)
    integrations = models.ManyToManyField(
        "integrations.Integration",
        related_name="agent_tokens",
        blank=True,
        help_text="The only integrations this token may use.",
    )
    # What the token may do (tools, grants, data rules, quotas). Null only on rows made before profiles
    # existed and not migrated; such a token keeps its old scope (integrations, access).
    profile = models.ForeignKey(
        "agents.AgentProfile", null=True, blank=True, on_delete=models.PROTECT, related_name="tokens"
    )
    on_behalf_of = models.CharField(
        max_length=150, blank=True, default="", help_text="The user a short-lived token acts for."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="agent_tokens"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = AgentTokenQuerySet.as_manager()

    class Meta:
        db_table = "integrations_agenttoken"  # and its scope, integrations_agenttoken_integrations
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…, {self.access})"

    @classmethod
    def issue(
        cls,
        *,
        name: str,
        access: str = Access.READ,
        integrations: list[Any] | None = None,
        created_by: Any = None,
        expires_at: Any = None,
        profile: Any = None,
        on_behalf_of: str = "",
    ) -> tuple[AgentToken, str]:
        """Create a token; returns the row and the raw token (never stored, shown once).

        With ``profile`` the token gets that profile's scope (its integrations are the profile's grants);
        without one, a profile is generated with the given integrations, read or write, and every tool.
        """
        from integrations.agents.models import AgentProfile

        if profile is None:
            profile = AgentProfile.for_token_scope(name, access, list(integrations or []))
        else:
            grants = list(profile.grants.select_related("integration"))
            integrations = [g.integration for g in grants]
            access = Access.WRITE if any(g.access == Access.WRITE for g in grants) else Access.READ
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            name=name,
            token_hash=hash_token(raw),
            token_prefix=raw[: len(TOKEN_PREFIX) + 6],
            access=access,
            created_by=created_by,
            expires_at=expires_at,
            profile=profile,
            on_behalf_of=on_behalf_of,
        )
        token.integrations.set(integrations or [])
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> AgentToken | None:
        if not raw or not raw.startswith(TOKEN_PREFIX):
            return None
        token = cls.objects.active().select_related("profile").filter(token_hash=hash_token(raw)).first()
        if token is not None:
            # One cheap UPDATE, without touching other columns a concurrent admin edit may change.
            now = timezone.now()
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class Outcome(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    ERROR = "error", "Error"  # the tool ran and the outside system said no (or failed)
    REFUSED = "refused", "Refused"  # stopped before running: scope, bad arguments, unsafe SQL
    UNAVAILABLE = "unavailable", "Unavailable"  # circuit open, integration in error
    TIMEOUT = "timeout", "Timed out"


class Via(models.TextChoices):
    REST = "rest", "REST"
    MCP = "mcp", "MCP"
    PYTHON = "python", "Python"


class ToolCall(models.Model):
    """One tool call, whatever its outcome: who, what, on which integration, how it ended.

    Arguments are stored with secrets masked; results are not stored, only their size.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    via = models.CharField(max_length=8, choices=Via.choices)
    token = models.ForeignKey(AgentToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tool_calls"
    )
    # Kept when the token or user is deleted: the trail outlives them.
    actor = models.CharField(max_length=150)
    tool = models.CharField(max_length=64, db_index=True)
    integration_ref = models.CharField(max_length=63, blank=True, default="", db_index=True)
    arguments = models.JSONField(default=dict, blank=True)  # secrets masked
    idempotency_key = models.CharField(max_length=200, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="", help_text="The Celery task that ran it.")
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RUNNING, db_index=True)
    error_category = models.CharField(max_length=24, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    result_size = models.PositiveIntegerField(null=True, blank=True, help_text="Bytes of the JSON result.")
    row_count = models.PositiveIntegerField(null=True, blank=True)
    truncated = models.BooleanField(default=False)

    class Meta:
        db_table = "integrations_toolcall"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["integration_ref", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.tool} on {self.integration_ref or '-'} by {self.actor}: {self.outcome}"

    def as_dict(self) -> dict[str, Any]:
        """The shape the API and the dashboard show (no secrets: arguments are stored masked)."""
        return {
            "id": self.pk,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_ms": self.duration_ms,
            "via": self.via,
            "actor": self.actor,
            "tool": self.tool,
            "integration": self.integration_ref or None,
            "arguments": self.arguments,
            "idempotency_key": self.idempotency_key or None,
            "outcome": self.outcome,
            "error_category": self.error_category or None,
            "error_message": self.error_message or None,
            "result_size": self.result_size,
            "row_count": self.row_count,
            "truncated": self.truncated,
        }


class IntentState(models.TextChoices):
    PENDING = "pending", "Pending"  # recorded before the write; the write may or may not have happened
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # the outside system refused it: nothing was written


class WriteIntent(models.Model):
    """An HRIS write, recorded (and committed) BEFORE it is sent, keyed by the caller's idempotency key.

    A retry with the same key returns the stored outcome; a retry that finds the intent still pending
    after its lease (its worker died, or lost the answer) first looks the record up in the HRIS and
    adopts it, so a second record is never created.
    """

    integration_ref = models.CharField(max_length=63)
    key = models.CharField(max_length=200)
    tool = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical arguments.")
    state = models.CharField(max_length=12, choices=IntentState.choices, default=IntentState.PENDING)
    # Until then the attempt that claimed the intent may still be running; after it, a retry may reconcile.
    lease_until = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=1)
    # What a reconciliation needs to find the record (ids seen before the write), and the outcome.
    context = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "integrations_writeintent"
        constraints = [models.UniqueConstraint(fields=["integration_ref", "key"], name="tools_unique_write_intent")]

    def __str__(self) -> str:
        return f"{self.tool} {self.key} on {self.integration_ref}: {self.state}"
