from django.contrib import admin

from integrations.sync.models import MirroredEmployee, SyncState, WebhookDelivery


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
