"""The mirror of an HRIS integration's employees, the webhook deliveries received, the sync's own state."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from integrations.models import Integration


class MirroredEmployee(models.Model):
    """One employee as last read from the provider: the unified shape, the provider's raw JSON, and when.

    A delete leaves a tombstone (``deleted_at``) so that readers and the change feed see it went."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="mirrored_employees")
    remote_id = models.CharField(max_length=64)
    data = models.JSONField(default=dict)
    raw = models.JSONField(default=dict, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "remote_id"], name="sync_unique_mirrored_employee")
        ]
        ordering = ["integration", "remote_id"]

    def __str__(self) -> str:
        return f"{self.integration_id}/{self.remote_id}{' (deleted)' if self.deleted_at else ''}"


class WebhookDelivery(models.Model):
    """Each delivery received, accepted or refused (and why): the webhook's health and an audit of forgeries."""

    class Verdict(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        REFUSED = "refused", "Refused"

    integration = models.ForeignKey(Integration, null=True, on_delete=models.SET_NULL, related_name="+")
    integration_ref = models.CharField(max_length=63, db_index=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    reason = models.CharField(max_length=200, blank=True, default="")
    event_type = models.CharField(max_length=64, blank=True, default="")
    employee_ids = models.JSONField(default=list, blank=True)
    # SHA-256 of the signature: a second delivery with the same one is a replay.
    signature_digest = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.integration_ref} {self.verdict} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class SyncState(models.Model):
    """Where the mirror of one integration stands: the last full sync and the reconciliation cursor."""

    integration = models.OneToOneField(Integration, on_delete=models.CASCADE, related_name="sync_state")
    full_sync_started_at = models.DateTimeField(null=True, blank=True)
    full_sync_finished_at = models.DateTimeField(null=True, blank=True)
    full_sync_done = models.PositiveIntegerField(default=0)
    full_sync_total = models.PositiveIntegerField(default=0)
    # BambooHR's "latest" of the last /employees/changed answer: the next reconciliation asks since then.
    changes_since = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"sync of {self.integration_id}"


class ChangeEvent(models.Model):
    """One change the mirror saw (created, updated, deleted), in order: the feed's cursor is the id."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=32, default="employee")
    remote_id = models.CharField(max_length=64)
    action = models.CharField(max_length=12)  # created / updated / deleted
    fields = models.JSONField(default=list, blank=True)  # the unified fields that changed
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.integration_id}/{self.remote_id} {self.action}"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.pk,
            "integration": self.integration_id,
            "entity": self.entity,
            "remote_id": self.remote_id,
            "action": self.action,
            "fields": self.fields,
            "occurred_at": self.occurred_at.isoformat(),
        }


class Subscription(models.Model):
    """An outbound webhook: the mirror's changes POSTed to ``url``, signed as Standard Webhooks says."""

    owner = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    # "whsec_" + base64 key (Standard Webhooks); shown once when the subscription is created.
    secret = models.CharField(max_length=100, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    failing_since = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.integration_id} -> {self.url}"


class OutboundDelivery(models.Model):
    """One change for one subscription: delivered, waiting for its next attempt, or given up."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    change = models.ForeignKey(ChangeEvent, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["subscription", "change"], name="sync_one_delivery_per_change")]

    def __str__(self) -> str:
        return f"change {self.change_id} to subscription {self.subscription_id}: {self.state}"
