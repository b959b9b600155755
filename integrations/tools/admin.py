"""Admin for agent tokens (created here or with manage.py create_agent_token), the read-only audit
trail of tool calls, and the write intents behind idempotent HRIS writes."""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from integrations.tools.models import TOKEN_PREFIX, AgentToken, ToolCall, WriteIntent, hash_token


class AgentTokenForm(forms.ModelForm):
    class Meta:
        model = AgentToken
        fields = ["name", "profile", "access", "integrations", "expires_at"]
        help_texts = {
            "profile": "What the token may do. Empty: a profile is generated from the integrations and access below.",
            "integrations": "Only for a token without a chosen profile (its generated profile follows them).",
        }


@admin.register(AgentToken)
class AgentTokenAdmin(admin.ModelAdmin):
    form = AgentTokenForm
    list_display = [
        "name",
        "token_prefix",
        "profile",
        "access",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["access", "revoked_at"]
    search_fields = ["name", "token_prefix"]
    filter_horizontal = ["integrations"]
    readonly_fields = ["token_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="Integrations")
    def scope(self, obj: AgentToken) -> str:
        return ", ".join(obj.integrations.values_list("id", flat=True)) or "—"

    def save_model(self, request: HttpRequest, obj: AgentToken, form: Any, change: bool) -> None:
        if not change:
            raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
            obj.token_hash = hash_token(raw)
            obj.token_prefix = raw[: len(TOKEN_PREFIX) + 6]
            if request.user.is_authenticated:  # always, past the admin's login
                obj.created_by = request.user
            # Only the hash is stored: this message is the one time the token is shown.
            messages.warning(request, f"The new token (copy it now, it is not shown again): {raw}")
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """A token belongs to a profile: without one chosen, a generated profile mirrors the integrations
        and access given here (and follows later edits); with one, the token's scope is the profile's."""
        super().save_related(request, form, formsets, change)
        from integrations.agents.models import AgentProfile

        token: AgentToken = form.instance
        integrations = list(token.integrations.all())
        profile = token.profile
        if profile is None:
            token.profile = AgentProfile.for_token_scope(token.name, token.access, integrations)
            token.save(update_fields=["profile"])
        elif profile.generated and profile.tokens.count() == 1:
            profile.grants.exclude(integration__in=integrations).delete()
            for integration in integrations:
                profile.grants.update_or_create(integration=integration, defaults={"access": token.access})
        else:
            grants = list(profile.grants.select_related("integration"))
            token.integrations.set([g.integration for g in grants])
            token.access = "write" if any(g.access == "write" for g in grants) else "read"
            token.save(update_fields=["access"])

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentToken]) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "tool",
        "integration_ref",
        "actor",
        "via",
        "outcome",
        "duration_ms",
        "result_size",
        "row_count",
        "truncated",
    ]
    list_filter = ["outcome", "tool", "via", "integration_ref"]
    search_fields = ["actor", "tool", "integration_ref", "idempotency_key", "error_message"]
    date_hierarchy = "created_at"
    list_select_related = False


@admin.register(WriteIntent)
class WriteIntentAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "integration_ref", "tool", "key", "state", "attempts", "lease_until"]
    list_filter = ["state", "tool"]
    search_fields = ["key", "integration_ref"]
