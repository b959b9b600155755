"""Admin forms for integrations, generated from the connector registry.

One form class per kind (``integration_form_class``): its credential inputs come from
``registry.describe(kind)``. Secret inputs are write-only: never rendered with a value, a blank input
keeps the stored secret, and a "clear" box per secret removes it. Config is JSON checked against the
kind's schema, with the schema's own field errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from django import forms
from django.utils.html import format_html, format_html_join

from connectors import registry
from connectors.errors import ConfigError
from integrations import rules, services
from integrations.models import AuthType, Integration

CREDENTIAL_PREFIX = "credential__"
CLEAR_PREFIX = "clear__"


class KindUnavailable(Exception):
    """A kind that is not in the registry, or whose connector module cannot be imported."""


def describe_kind(kind: str) -> dict[str, Any]:
    try:
        return registry.describe(kind)
    except ConfigError as exc:
        raise KindUnavailable(f"unknown kind {kind!r}") from exc
    except ImportError as exc:  # a kind listed in the registry whose module is missing or broken
        raise KindUnavailable(f"the {kind!r} connector cannot be loaded ({type(exc).__name__})") from exc


def schema_help(description: Mapping[str, Any]) -> str:
    """A short, safe HTML list of the config fields of a kind (name, type, default, description)."""
    schema = description["config_schema"]
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or " | ".join(
            str(option.get("type", option.get("$ref", "?")).rsplit("/", 1)[-1]) for option in prop.get("anyOf", [])
        )
        if "$ref" in prop:
            kind = "object"
        extra = "required" if name in required else f"default {prop['default']!r}" if "default" in prop else "optional"
        rows.append((name, kind or "object", extra, prop.get("description", "")))
    items = format_html_join("", "<li><code>{}</code> ({}, {}) {}</li>", rows)
    return format_html("A JSON object with these keys:<ul>{}</ul>", items)


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, so a config of a dozen keys stays readable in the textarea."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, cls=self.encoder, indent=2)


class IntegrationAdminForm(forms.ModelForm):
    # Set on the per-kind subclasses made by integration_form_class().
    description: ClassVar[dict[str, Any] | None] = None
    # Who is saving (set by the admin per request): the lifecycle rules depend on it.
    actor: ClassVar[Any] = None

    config = PrettyJSONField(
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "spellcheck": "false"}),
        help_text="Non-secret settings as a JSON object.",
    )

    class Meta:
        model = Integration
        fields = [
            "id",
            "name",
            "kind",
            "auth_type",
            "config",
            "enabled",
            "health_check_interval",
            "owner",
            "shared_with_groups",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = (self.instance.credentials or {}) if self.instance.pk else {}
        if self.description is not None:
            if "config" in self.fields:
                self.fields["config"].help_text = schema_help(self.description)
            if "auth_type" in self.fields:
                allowed = set(self.description["auth_types"])
                field = cast(forms.ChoiceField, self.fields["auth_type"])  # the model field's choices, no blank
                field.choices = [(value, label) for value, label in AuthType.choices if value in allowed]
                if not self.instance.pk:
                    field.initial = self.description["auth_types"][0]
            if "kind" in self.fields:
                # The credential inputs below belong to this kind: it is chosen before the form opens.
                self.fields["kind"].widget = forms.HiddenInput()
                self.fields["kind"].initial = self.description["kind"]
        for spec in self.credential_specs():
            name = spec["name"]
            is_set = bool(stored.get(name))
            if spec["secret"]:
                state = "Currently set; leave blank to keep it." if is_set else "Not set."
                self.fields[CREDENTIAL_PREFIX + name].help_text = format_html(
                    "<strong>{}</strong> {}", state, spec.get("help") or ""
                )
                if not is_set:
                    self.fields[CLEAR_PREFIX + name].disabled = True
            else:
                self.fields[CREDENTIAL_PREFIX + name].initial = stored.get(name, "")

    # -- helpers -------------------------------------------------------------------------------

    @classmethod
    def credential_specs(cls) -> list[dict[str, Any]]:
        return list(cls.description["credential_fields"]) if cls.description else []

    def _kind(self) -> str | None:
        return self.instance.kind if self.instance.pk else self.cleaned_data.get("kind")

    def stored_credentials(self) -> dict[str, Any]:
        return dict(self.instance.credentials or {}) if self.instance.pk else {}

    def credential_changes(self) -> dict[str, str | None]:
        """What the admin asked for: a new value, or None to clear. Untouched fields are absent."""
        stored = self.stored_credentials()
        changes: dict[str, str | None] = {}
        for spec in self.credential_specs():
            name = spec["name"]
            value = self.cleaned_data.get(CREDENTIAL_PREFIX + name) or ""
            if spec["secret"]:
                if self.cleaned_data.get(CLEAR_PREFIX + name):
                    if name in stored:
                        changes[name] = None
                elif value:
                    changes[name] = value
            elif value != (stored.get(name) or ""):
                changes[name] = value or None
        return changes

    # -- validation ----------------------------------------------------------------------------

    def clean_id(self) -> Any:
        value = self.cleaned_data.get("id")
        if value in rules.RESERVED_IDS:
            raise forms.ValidationError(rules.RESERVED_ID)
        return value

    def clean_config(self) -> dict[str, Any]:
        value = self.cleaned_data.get("config")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"host": "db.example.com"}.')
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        kind = self._kind()
        if self.description is None or kind is None or kind != self.description["kind"]:
            if kind and "kind" not in self.errors:
                self.add_error(None, f"The {kind!r} connector cannot be loaded; no change was saved.")
            return cleaned
        for spec in self.credential_specs():
            name = spec["name"]
            if spec["secret"] and cleaned.get(CLEAR_PREFIX + name) and cleaned.get(CREDENTIAL_PREFIX + name):
                self.add_error(CREDENTIAL_PREFIX + name, "Enter a new value or tick clear, not both.")
        if "config" in cleaned and "config" not in self.errors:
            try:
                services.validate_config(kind, cleaned["config"])  # the target policy too
            except ConfigError as exc:
                for field, messages in exc.errors.items():
                    for message in messages:
                        self.add_error("config", f"{field}: {message}")
            else:
                self._check_rules(kind, cleaned)
        auth_type = cleaned.get("auth_type") or self.instance.auth_type
        if auth_type and "auth_type" not in self.errors:
            merged, _changed = services.merge_credentials(self.stored_credentials(), self.credential_changes())
            # Only the fields this form edits: values the hub stores itself (OAuth tokens) are not the admin's.
            editable = {spec["name"] for spec in self.credential_specs()}
            merged = {k: v for k, v in merged.items() if v is not None and k in editable}
            try:
                registry.validate_credentials(kind, auth_type, merged)
            except ConfigError as exc:
                for field, messages in exc.errors.items():
                    target = CREDENTIAL_PREFIX + field if CREDENTIAL_PREFIX + field in self.fields else None
                    if field == "auth_type" and "auth_type" in self.fields:
                        target = "auth_type"
                    for message in messages:
                        self.add_error(target, message if target else f"{field}: {message}")
        return cleaned

    def _check_rules(self, kind: str, cleaned: dict[str, Any]) -> None:
        """The service layer's lifecycle rules, asked first so that a refusal is a form error, not a lost save."""
        owner_id = getattr(cleaned["owner"], "pk", None) if "owner" in cleaned else self.instance.owner_id
        errors = rules.file_errors(
            actor=self.actor,
            kind=kind,
            config=cleaned["config"],
            owner_id=owner_id,
            integration_id=self.instance.pk or None,
            before=self.instance.config if self.instance.pk else None,
        )
        for field, messages in errors.items():
            for message in messages:
                self.add_error("config", f"{field.removeprefix('config.')}: {message}")


def integration_form_class(kind: str | None) -> type[IntegrationAdminForm]:
    """The admin form for ``kind``, with one input per credential field of its connector.

    A kind that cannot be described yields the bare form, whose clean() refuses to save.
    """
    try:
        description = describe_kind(kind) if kind else None
    except KindUnavailable:
        description = None
    attrs: dict[str, Any] = {"description": description, "__module__": __name__}
    for spec in description["credential_fields"] if description else []:
        name, label = spec["name"], spec["label"]
        if spec["secret"]:
            attrs[CREDENTIAL_PREFIX + name] = forms.CharField(
                label=label,
                required=False,
                strip=False,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            )
            attrs[CLEAR_PREFIX + name] = forms.BooleanField(label=f"Clear the stored {label.lower()}", required=False)
        else:
            attrs[CREDENTIAL_PREFIX + name] = forms.CharField(
                label=label, required=False, help_text=spec.get("help", "")
            )
    suffix = (kind or "none").title().replace("_", "")
    return type(f"IntegrationAdminForm{suffix}", (IntegrationAdminForm,), attrs)


def credential_form_fields(form_class: type[IntegrationAdminForm]) -> list[str]:
    names: list[str] = []
    for spec in form_class.credential_specs():
        names.append(CREDENTIAL_PREFIX + spec["name"])
        if spec["secret"]:
            names.append(CLEAR_PREFIX + spec["name"])
    return names
