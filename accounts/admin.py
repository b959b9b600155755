"""API tokens in the admin: who, when, until when, and the first characters — never the token itself.

Tokens are created only by ``manage.py create_api_token`` (the token is printed once there); knox's own
admin would show a new token in a flash message, which passes through the session store. Deleting a
row revokes the token at once.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from knox.models import AuthToken

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class APITokenAdmin(admin.ModelAdmin):
    list_display = ("user", "prefix", "created", "expiry", "state")
    list_filter = ("expiry", "created")
    search_fields = ("user__username", "token_key")
    fields = ("user", "prefix", "created", "expiry", "state")
    readonly_fields = fields
    ordering = ("-created",)
    actions = ["delete_selected"]

    @admin.display(description="Token starts with", ordering="token_key")
    def prefix(self, obj: AuthToken) -> str:
        return f"{obj.token_key}…"

    @admin.display(description="State")
    def state(self, obj: AuthToken) -> str:
        return "expired" if obj.expiry is not None and obj.expiry <= timezone.now() else "active"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
