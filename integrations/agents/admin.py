"""Agent profiles in the admin: a profile with its grants inline; custom field classes per integration."""

from __future__ import annotations

from django.contrib import admin

from integrations.agents.models import AgentProfile, CustomFieldClass, ProfileGrant


class ProfileGrantInline(admin.StackedInline):
    model = ProfileGrant
    extra = 0
    fields = ["integration", "access", "hris", "database"]


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "generated", "calls_per_minute", "rows_per_day", "writes_per_day", "updated_at"]
    search_fields = ["name", "description"]
    list_filter = ["generated"]
    readonly_fields = ["generated", "created_at", "updated_at"]
    fields = [
        "name",
        "description",
        "tools",
        "max_token_ttl",
        ("calls_per_minute", "rows_per_day", "writes_per_day"),
        "generated",
        ("created_at", "updated_at"),
    ]
    inlines = [ProfileGrantInline]


@admin.register(CustomFieldClass)
class CustomFieldClassAdmin(admin.ModelAdmin):
    list_display = ["integration", "field", "field_class"]
    list_filter = ["field_class", "integration"]
    search_fields = ["field"]
