"""Where integrations, their encrypted credentials and their history live."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from integrations.crypto import EncryptedJSONField

slug_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{1,62}$",
    "Use 2-63 lowercase letters, digits or underscores, starting with a letter (e.g. bamboo_hr).",
)


def kind_choices() -> list[tuple[str, str]]:
    from connectors import registry

    return registry.choices()


class AuthType(models.TextChoices):
    API_KEY = "api_key", "API key"
    BASIC = "basic", "Basic (user name and password)"
    OAUTH2 = "oauth2", "OAuth2"
    NONE = "none", "None"


class Status(models.TextChoices):
    DISCONNECTED = "disconnected", "Disconnected"
    CONNECTING = "connecting", "Connecting"
    CONNECTED = "connected", "Connected"
    DEGRADED = "degraded", "Degraded"
    ERROR = "error", "Error"
    RECONNECT_REQUIRED = "reconnect_required", "Reconnect required"


class IntegrationQuerySet(models.QuerySet["Integration"]):
    def visible_to(self, user: Any) -> IntegrationQuerySet:
        """Staff see everything; others see what they own or what is shared with one of their groups."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(models.Q(owner=user) | models.Q(shared_with_groups__in=user.groups.all())).distinct()


class Integration(models.Model):
    id = models.CharField(primary_key=True, max_length=63, validators=[slug_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=kind_choices)
    auth_type = models.CharField(max_length=16, choices=AuthType.choices, default=AuthType.NONE)
    config = models.JSONField(default=dict, blank=True)
    credentials = EncryptedJSONField(null=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.DISCONNECTED, db_index=True)
    last_error = models.TextField(blank=True, default="")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True, db_index=True)
    health_check_interval = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(5)], help_text="Seconds between scheduled health checks."
    )
    # Consecutive failed / successful checks, for hysteresis between connected, degraded and error.
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    # Bumped on every config or credential change: workers rebuild their cached connector.
    config_version = models.PositiveIntegerField(default=1)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="integrations"
    )
    shared_with_groups = models.ManyToManyField(Group, blank=True, related_name="integrations")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def __repr__(self) -> str:  # never shows credentials
        return f"<Integration {self.id!r} kind={self.kind!r} status={self.status!r}>"

    @property
    def secret_fields_set(self) -> dict[str, bool]:
        """Which secrets are stored, never their values."""
        from connectors import registry

        stored = self.credentials or {}
        try:
            fields = registry.get(self.kind).credential_fields
        except Exception:
            return {name: bool(value) for name, value in stored.items()}
        return {f.name: bool(stored.get(f.name)) for f in fields}


class EventType(models.TextChoices):
    STATUS_CHANGE = "status_change", "Status change"
    TEST = "test", "Connection test"
    HEALTH_CHECK = "health_check", "Health check"
    TOKEN_REFRESH = "token_refresh", "Token refresh"
    CONFIG_CHANGE = "config_change", "Configuration change"
    CONNECT = "connect", "Connect"
    DISCONNECT = "disconnect", "Disconnect"
    OPERATION = "operation", "Operation"


class IntegrationEvent(models.Model):
    # Kept when the integration is deleted: the history outlives it (integration_ref keeps the id).
    integration = models.ForeignKey(
        Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    integration_ref = models.CharField(max_length=63, db_index=True)
    type = models.CharField(max_length=24, choices=EventType.choices, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ok = models.BooleanField(null=True)
    latency_ms = models.FloatField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    message = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)  # never holds a secret

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["integration_ref", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.integration_ref} {self.type} at {self.created_at:%Y-%m-%d %H:%M:%S}"
