"""Django admin for integrations and their history.

Writes go through ``integrations.services`` (create/update/delete, connect/disconnect/test) so that an
admin change records the same config_change event and live push as an API or dashboard change. The
change form comes from ``integrations.forms``: generated per kind from the connector registry, with
write-only secrets.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from connectors import registry
from connectors.errors import ConfigError
from integrations import services
from integrations.forms import (
    IntegrationAdminForm,
    KindUnavailable,
    credential_form_fields,
    describe_kind,
    integration_form_class,
)
from integrations.models import Integration, IntegrationEvent

_MAIN_FIELDS = ["name", "auth_type", "enabled", "health_check_interval", "owner", "shared_with_groups"]
_STATE_FIELDS = ["status", "last_error", "last_checked_at", "config_version", "created_at", "updated_at", "history"]


class AdminSaveRejected(Exception):
    """The service layer refused a save the form had accepted (e.g. a concurrent duplicate id)."""


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "kind", "status", "enabled", "last_check"]
    list_filter = ["status", "kind", "enabled", "auth_type"]
    search_fields = ["id", "name", "last_error"]
    list_select_related = ["owner"]
    actions = ["test_connection", "connect", "disconnect"]
    choose_kind_template = "admin/integrations/integration/choose_kind.html"

    # -- which kind the form is for ------------------------------------------------------------

    @staticmethod
    def _kind_for(request: HttpRequest, obj: Integration | None) -> str | None:
        if obj is not None:
            return obj.kind
        return request.POST.get("kind") or request.GET.get("kind") or None

    def get_form(
        self, request: HttpRequest, obj: Integration | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = integration_form_class(self._kind_for(request, obj))
        # A subclass of the form passed in, made by modelform_factory.
        form = cast(type[IntegrationAdminForm], super().get_form(request, obj, change=change, **kwargs))
        form.actor = request.user  # a class made for this request: the lifecycle rules depend on who saves
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Integration | None = None) -> Any:
        form_class = integration_form_class(self._kind_for(request, obj))
        head = ["id", "kind", *_MAIN_FIELDS] if obj is not None else ["kind", "id", *_MAIN_FIELDS]
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (form_class.description["label"] if form_class.description else None, {"fields": head}),
            ("Configuration", {"fields": ["config"]}),
        ]
        credential_fields = credential_form_fields(form_class)
        if credential_fields:
            fieldsets.append(
                (
                    "Credentials",
                    {
                        "fields": credential_fields,
                        "description": "Stored encrypted and never shown again. A blank input keeps the stored "
                        "value; tick “clear” to remove it.",
                    },
                )
            )
        if obj is not None:
            fieldsets.append(("State", {"fields": _STATE_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Integration | None = None) -> Any:
        return ["id", "kind", *_STATE_FIELDS] if obj is not None else []

    @admin.display(description="Last check", ordering="last_checked_at")
    def last_check(self, obj: Integration) -> Any:
        return obj.last_checked_at

    @admin.display(description="History")
    def history(self, obj: Integration) -> str:
        url = reverse("admin:integrations_integrationevent_changelist") + f"?integration_ref={obj.pk}"
        count = obj.events.count()
        return format_html('<a href="{}">{} event{}</a>', url, count, pluralize(count))

    # -- add: choose the kind first, so the form can show its credential fields -----------------

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        kind = self._kind_for(request, None)
        error = None
        if kind:
            try:
                describe_kind(kind)
            except KindUnavailable as exc:
                error = str(exc)
        if not kind or error:
            if error:
                messages.error(request, f"Cannot add this integration: {error}.")
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Add integration: choose its kind",
                "kinds": registry.choices(),
                "add_url": reverse("admin:integrations_integration_add"),
            }
            return TemplateResponse(request, self.choose_kind_template, context)
        return super().add_view(request, form_url, extra_context)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AdminSaveRejected as exc:
            # Raised inside the admin's transaction: everything it wrote is rolled back.
            messages.error(request, f"Nothing was saved: {exc}")
            return HttpResponseRedirect(request.get_full_path())

    # -- saving through the service layer -------------------------------------------------------

    def save_form(self, request: HttpRequest, form: IntegrationAdminForm, change: bool) -> Integration:
        return form.save(commit=False)

    def save_model(self, request: HttpRequest, obj: Integration, form: IntegrationAdminForm, change: bool) -> None:
        data = form.cleaned_data
        try:
            if change:
                current = Integration.objects.get(pk=obj.pk)
                changes = {
                    name: data[name] for name in form.changed_data if name in services.UPDATABLE_FIELDS and name in data
                }
                credentials = form.credential_changes()
                if credentials:
                    changes["credentials"] = credentials
                saved = services.update_integration(current, actor=request.user, **changes)
            else:
                saved = services.create_integration(
                    actor=request.user,
                    id=data["id"],
                    name=data["name"],
                    kind=data["kind"],
                    auth_type=data["auth_type"],
                    config=data.get("config") or {},
                    credentials=form.credential_changes(),
                    owner=data.get("owner"),
                    enabled=data.get("enabled", True),
                    health_check_interval=data["health_check_interval"],
                )
        except ConfigError as exc:
            raise AdminSaveRejected(exc.message) from None
        # The admin goes on with this object (m2m, log entry, redirect): make it the stored row.
        saved.refresh_from_db()
        obj.__dict__.update(saved.__dict__)
        form.instance = obj

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Group sharing goes through the service (which records the change), not the form's save_m2m.
        groups = form.cleaned_data.pop("shared_with_groups", None)
        super().save_related(request, form, formsets, change)
        if groups is not None:
            services.set_sharing(form.instance, groups, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Integration) -> None:
        services.delete_integration(obj.pk, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.delete_integration(pk, actor=request.user)

    # -- actions --------------------------------------------------------------------------------

    def _request(self, request: HttpRequest, queryset: QuerySet[Integration], verb: str, call: Any) -> None:
        done, failed = [], []
        for integration in queryset:
            try:
                with transaction.atomic():
                    call(integration.pk, actor=request.user)
                done.append(integration.pk)
            except (ConfigError, Integration.DoesNotExist) as exc:
                failed.append(f"{integration.pk}: {getattr(exc, 'message', exc)}")
        if done:
            messages.success(request, f"{verb} requested for {', '.join(done)}; results appear in the history.")
        for line in failed:
            messages.error(request, f"{verb} not requested for {line}")

    @admin.action(description="Test connection")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        self._request(request, queryset, "Connection test", services.request_test)

    @admin.action(description="Connect")
    def connect(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        self._request(request, queryset, "Connect", services.request_connect)

    @admin.action(description="Disconnect")
    def disconnect(self, request: HttpRequest, queryset: QuerySet[Integration]) -> None:
        self._request(request, queryset, "Disconnect", services.request_disconnect)


@admin.register(IntegrationEvent)
class IntegrationEventAdmin(admin.ModelAdmin):
    """The history is written by the hub only: viewable, never added, edited or deleted here."""

    list_display = ["created_at", "integration_ref", "type", "ok", "latency_ms", "actor", "message"]
    list_filter = ["type", "ok"]
    search_fields = ["integration_ref", "message", "actor"]
    date_hierarchy = "created_at"
    list_select_related = ["integration"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
