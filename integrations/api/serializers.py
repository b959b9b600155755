"""What the API reads and writes. Credentials go in, never out: responses carry ``secrets`` (which are set).

Config and credentials are checked against the kind's schema through ``connectors.registry`` so that a
client gets field-level errors (``{"config": {"port": ["..."]}}``) before anything is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from connectors import registry
from connectors.errors import ConfigError
from integrations import rules, services
from integrations.api.fields import (
    SECRETS_SCHEMA,
    ConfigField,
    CredentialsField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSlugRelatedField,
)
from integrations.api.responses import AvailabilitySerializer
from integrations.crypto import decrypt_any
from integrations.models import AuthType, Integration, slug_validator

# Scheduled checks more than a week apart are a mistake, and an unbounded integer would overflow the column.
MAX_HEALTH_CHECK_INTERVAL = 7 * 24 * 3600


def _iso(value: Any, tz: Any) -> str | None:
    """DRF's DateTimeField output (ISO 8601 in the current time zone, "Z" for UTC) without its per-call lookups."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# Which secrets a row has, by its stored ciphertext. Decrypting costs ~50 us a row (most of a 1,000-row
# list's budget); a ciphertext never changes without its plaintext changing (Fernet: a fresh IV on every
# write), so the flags of one ciphertext can be remembered. Only booleans are kept, never a secret.
_SECRET_FLAGS: dict[tuple[str, bytes], dict[str, bool]] = {}
_SECRET_FLAGS_MAX = 10_000
CREDENTIALS_TOKEN = "_credentials_token"  # the annotation IntegrationViewSet adds for lists


def secret_flags(instance: Integration) -> dict[str, bool]:
    if CREDENTIALS_TOKEN not in instance.__dict__:
        return instance.secret_fields_set
    token = instance.__dict__[CREDENTIALS_TOKEN]
    if token is None:
        instance.credentials = None
        return instance.secret_fields_set
    raw = bytes(token)
    key = (instance.kind, hashlib.sha256(raw).digest())
    flags = _SECRET_FLAGS.get(key)
    if flags is None:
        instance.credentials = decrypt_any(raw)
        flags = instance.secret_fields_set
        if len(_SECRET_FLAGS) >= _SECRET_FLAGS_MAX:
            _SECRET_FLAGS.clear()
        _SECRET_FLAGS[key] = flags
    return dict(flags)


def nested_errors(exc: ConfigError) -> dict[str, Any]:
    """A service-layer refusal in the API's shape: ``config.path`` becomes ``{"config": {"path": [...]}}``."""
    if not exc.errors:
        return {"non_field_errors": [exc.message]}
    nested: dict[str, Any] = {}
    for name, messages in exc.errors.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = list(messages)
        else:
            nested[head] = list(messages)
    return nested


class IntegrationListSerializer(serializers.ListSerializer):
    """Lists load the group names of the whole page in one query (constant queries, no per-row managers)."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        rows = list(data.all() if isinstance(data, models.Manager) else data)
        names: dict[str, list[str]] = {row.pk: [] for row in rows}
        through = Integration.shared_with_groups.through
        for integration_id, group_name in (
            through.objects.filter(integration_id__in=list(names))
            .order_by("group__name")
            .values_list("integration_id", "group__name")
        ):
            names[integration_id].append(group_name)
        for row in rows:
            row._shared_with_names = names[row.pk]  # type: ignore[attr-defined]
        assert self.child is not None  # many=True always sets it; the stubs allow a ListSerializer without one
        return [self.child.to_representation(row) for row in rows]


class IntegrationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:integration-detail", read_only=True)
    id = StrictCharField(
        max_length=63,
        required=False,
        validators=[slug_validator],
        help_text="Slug: 2-63 lowercase letters, digits or underscores (e.g. bamboo_hr); made from the name when "
        "omitted. Staff get exactly this id (400 if taken). For anyone else it is a prefix (at most 56 characters) "
        "to which the hub adds '_' and 6 random letters or digits, so that nobody learns which ids others hold; "
        "the response carries the id. 'new' is reserved.",
    )
    kind = StrictChoiceField(
        choices=registry.choices(),
        error_messages={"invalid_choice": f'Unknown kind "{{input}}"; expected one of: {", ".join(registry.kinds())}.'},
        help_text="Connector kind (GET /api/connector-types). Cannot change after creation.",
    )
    auth_type = StrictChoiceField(
        choices=AuthType.choices, required=False, help_text="Defaults to the kind's first supported auth type."
    )
    config = ConfigField(required=False)
    credentials = CredentialsField(required=False, write_only=True)
    secrets = serializers.SerializerMethodField()
    health_check_interval = StrictIntegerField(
        min_value=5, max_value=MAX_HEALTH_CHECK_INTERVAL, required=False, help_text="Seconds between health checks."
    )
    owner = StrictSlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        help_text="User name of the owner; defaults to you. Only staff may assign another owner.",
    )
    shared_with = StrictSlugRelatedField(
        source="shared_with_groups",
        slug_field="name",
        many=True,
        required=False,
        queryset=Group.objects.all(),
        help_text="Names of groups whose members may see and use (not change) this integration.",
    )

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.BooleanField: StrictBooleanField,
    }

    class Meta:
        model = Integration
        list_serializer_class = IntegrationListSerializer
        fields = [
            "url",
            "id",
            "name",
            "kind",
            "auth_type",
            "config",
            "credentials",
            "secrets",
            "enabled",
            "health_check_interval",
            "status",
            "last_error",
            "last_checked_at",
            "config_version",
            "owner",
            "shared_with",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "status",
            "last_error",
            "last_checked_at",
            "config_version",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(SECRETS_SCHEMA)
    def get_secrets(self, obj: Integration) -> dict[str, bool]:
        return secret_flags(obj)

    def to_representation(self, instance: Integration) -> dict[str, Any]:
        """The declared fields' output, written out: DRF's per-field machinery costs ~1 ms a row, and a
        list of 1,000 must answer within 100 ms. tests/integrations/api asserts it equals ``generic_representation``."""
        request = self.context.get("request")
        base = self.context.get("_integrations_url")
        if base is None:
            base = reverse("api:integration-list")
            base = request.build_absolute_uri(base) if request is not None else base
            # The root serializer's context dict, shared by the rows of a list; the stubs type it read-only.
            self.context["_integrations_url"] = base  # type: ignore[index]
        tz = timezone.get_current_timezone()
        names = instance.__dict__.get("_shared_with_names")
        if names is None:
            names = sorted(group.name for group in instance.shared_with_groups.all())
        if "owner_username" in instance.__dict__:  # annotated by the viewset's queryset
            owner_name = instance.owner_username  # type: ignore[attr-defined]
        else:
            owner_name = instance.owner.get_username() if instance.owner is not None else None
        return {
            "url": f"{base}/{instance.pk}",
            "id": instance.pk,
            "name": instance.name,
            "kind": instance.kind,
            "auth_type": instance.auth_type,
            "config": instance.config,
            "secrets": secret_flags(instance),
            "enabled": instance.enabled,
            "health_check_interval": instance.health_check_interval,
            "status": instance.status,
            "last_error": instance.last_error,
            "last_checked_at": _iso(instance.last_checked_at, tz),
            "config_version": instance.config_version,
            "owner": owner_name,
            "shared_with": names,
            "created_at": _iso(instance.created_at, tz),
            "updated_at": _iso(instance.updated_at, tz),
        }

    def generic_representation(self, instance: Integration) -> dict[str, Any]:
        """What DRF's field machinery would produce; the reference for ``to_representation``."""
        return super().to_representation(instance)

    # Validation -----------------------------------------------------------------------------------------------
    def validate_shared_with(self, groups: list[Group]) -> list[Group]:
        user = self.context["request"].user
        if user.is_staff:
            return groups
        # Shares already in place (e.g. set by staff) may stay; new ones only to the user's own groups.
        allowed = set(user.groups.values_list("pk", flat=True))
        if self.instance is not None:
            allowed |= {g.pk for g in self.instance.shared_with_groups.all()}
        foreign = sorted(g.name for g in groups if g.pk not in allowed)
        if foreign:
            raise serializers.ValidationError(
                f"You can only share with groups you belong to (not: {', '.join(foreign)})."
            )
        return groups

    def validate_owner(self, owner: Any) -> Any:
        user = self.context["request"].user
        if not user.is_staff and owner != user:
            raise serializers.ValidationError("Only staff may assign another owner.")
        return owner

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Integration | None = self.instance
        if instance is not None:
            if "id" in attrs and attrs["id"] != instance.id:
                raise serializers.ValidationError({"id": ["The id cannot be changed."]})
            if "kind" in attrs and attrs["kind"] != instance.kind:
                raise serializers.ValidationError({"kind": ["The kind cannot be changed; create a new integration."]})
            kind = instance.kind
            auth_type = attrs.get("auth_type", instance.auth_type)
            config = attrs.get("config", instance.config)
            stored = instance.credentials
        else:
            kind = attrs["kind"]
            auth_type = attrs.get("auth_type") or registry.get(kind).auth_types[0]
            attrs["auth_type"] = auth_type
            config = attrs.get("config", {})
            stored = None
        credentials, _changed = services.merge_credentials(stored, attrs.get("credentials"))

        errors: dict[str, Any] = {}
        try:
            services.validate_config(kind, config)  # the target policy too: where it may point
        except ConfigError as exc:
            errors["config"] = exc.errors or {"non_field_errors": [exc.message]}
        try:
            registry.validate_credentials(kind, auth_type, credentials)
        except ConfigError as exc:
            field_errors = dict(exc.errors)
            if "auth_type" in field_errors:
                errors["auth_type"] = field_errors.pop("auth_type")
            if field_errors:
                errors["credentials"] = field_errors
        if instance is None or "config" in attrs or "owner" in attrs:
            self._file_errors(errors, kind, config, attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _file_errors(self, errors: dict[str, Any], kind: str, config: Any, attrs: dict[str, Any]) -> None:
        """The lifecycle rules on files (services enforce them; asked here too so that one 400 names every
        problem at once, next to the target policy's)."""
        instance: Integration | None = self.instance
        user = self.context["request"].user
        if "owner" in attrs:
            owner_id = getattr(attrs["owner"], "pk", None)
        else:  # the stored owner's id, without loading the user
            owner_id = instance.owner_id if instance is not None else getattr(user, "pk", None)
        found = rules.file_errors(
            actor=user,
            kind=kind,
            config=config if isinstance(config, Mapping) else None,
            owner_id=owner_id,
            integration_id=instance.pk if instance is not None else None,
            before=instance.config if instance is not None else None,
        )
        for name, messages in found.items():
            config_errors = errors.setdefault("config", {})
            field = config_errors.setdefault(name.removeprefix("config."), [])
            field.extend(m for m in messages if m not in field)

    # Writes go through the service layer (events, live pushes, connector invalidation) -----------------------
    def create(self, validated_data: dict[str, Any]) -> Integration:
        user = self.context["request"].user
        groups = validated_data.pop("shared_with_groups", None)
        validated_data.setdefault("owner", user)
        with transaction.atomic():
            try:
                integration = services.create_integration(actor=user, **validated_data)
            except ConfigError as exc:
                raise serializers.ValidationError(nested_errors(exc)) from None
            if groups:
                services.set_sharing(integration, groups, actor=user)
        return integration

    def update(self, instance: Integration, validated_data: dict[str, Any]) -> Integration:
        user = self.context["request"].user
        groups = validated_data.pop("shared_with_groups", None)
        validated_data.pop("id", None)
        validated_data.pop("kind", None)
        with transaction.atomic():
            try:
                integration = services.update_integration(instance, actor=user, **validated_data)
            except ConfigError as exc:
                raise serializers.ValidationError(nested_errors(exc)) from None
            if groups is not None:
                services.set_sharing(integration, groups, actor=user)
        return integration


class IntegrationDetailSerializer(IntegrationSerializer):
    """One integration (create, read, change): also its uptime over 24 h / 7 d / 30 d, "down since" and "last
    success" (``services.availability``). Lists leave it out: it costs a few queries per integration."""

    availability = serializers.SerializerMethodField()

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "availability"]

    @extend_schema_field(AvailabilitySerializer)
    def get_availability(self, obj: Integration) -> dict[str, Any]:
        return services.availability(obj)

    def to_representation(self, instance: Integration) -> dict[str, Any]:
        return super().to_representation(instance) | {"availability": self.get_availability(instance)}


class IntegrationUpdateSerializer(IntegrationDetailSerializer):
    """PUT / PATCH: the URL names the integration and its kind is fixed, so neither is needed in the body
    (a full representation may still carry them; a different value is a 400)."""

    id = StrictCharField(required=False, help_text="Optional; must equal the id in the URL.")
    # A declared field of this serializer only (DRF's metaclass collects them), not a subtype of the parent's.
    kind = StrictCharField(required=False, help_text="Optional; must equal the stored kind.")  # type: ignore[assignment]
