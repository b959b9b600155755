from django.contrib import admin

from integrations.sync.models import (
    ChangeEvent,
    MirroredEmployee,
    OutboundDelivery,
    Subscription,
    SyncState,
    WebhookDelivery,
)


@admin.register(MirroredEmployee)
class MirroredEmployeeAdmin(admin.ModelAdmin):
    list_display = ["integration", "remote_id", "synced_at", "remote_updated_at", "deleted_at"]
    list_filter = ["integration"]
    search_fields = ["remote_id"]
    readonly_fields = [f.name for f in MirroredEmployee._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "integration_ref", "verdict", "event_type", "reason"]
    list_filter = ["verdict", "integration_ref"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(SyncState)
class SyncStateAdmin(admin.ModelAdmin):
    list_display = ["integration", "full_sync_finished_at", "reconciled_at", "last_webhook_at", "last_error"]
    readonly_fields = [f.name for f in SyncState._meta.fields]


class DeliveryInline(admin.TabularInline):
    model = OutboundDelivery
    fields = ("change", "state", "attempts", "next_attempt_at", "last_status", "last_error", "delivered_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-id"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """Outbound webhooks with their delivery log; the secret is never shown after creation."""

    list_display = ["id", "integration", "url", "active", "failing_since"]
    list_filter = ["active", "integration"]
    exclude = ["secret"]
    readonly_fields = ["owner", "integration", "created_at", "failing_since"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request: object) -> bool:
        return False  # made through the API, which shows the secret once


@admin.register(ChangeEvent)
class ChangeEventAdmin(admin.ModelAdmin):
    list_display = ["id", "occurred_at", "integration", "entity", "remote_id", "action"]
    list_filter = ["action", "integration"]
    readonly_fields = [f.name for f in ChangeEvent._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
