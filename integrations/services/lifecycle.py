"""Create, update (sharing too) and delete integrations, with the one credential merge.

Write-side functions run in the web process: they validate through the registry and the target policy,
apply the lifecycle rules (``integrations.rules``), store, record a config_change event and push it.
The API serializer, the admin form and the wizard (through the API) merge credentials with
``merge_credentials``, so that what they check is what gets stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from connectors import registry
from connectors.base import BaseConfig
from connectors.errors import ConfigError
from integrations import connector_runtime, rules
from integrations.models import EventType, Integration, Status
from integrations.services.events import actor_name, push, record_event, set_status
from integrations.services.runtime import close_connector
from integrations.target_policy import target_policy

# Fields update_integration accepts; anything else is refused with a field error.
UPDATABLE_FIELDS = ("name", "config", "credentials", "enabled", "health_check_interval", "auth_type", "owner")
# Changing one of these makes every process rebuild its live connector.
_CONNECTOR_FIELDS = {"config", "credentials", "auth_type"}


def merge_credentials(
    stored: Mapping[str, Any] | None, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The one credential merge: a key absent from ``given`` keeps its stored value, None or "" clears it,
    any other value replaces it. Returns the merged credentials and what changed per key ("set",
    "changed" or "cleared"; names only, never values)."""
    merged = dict(stored or {})
    changes: dict[str, str] = {}
    for key, value in (given or {}).items():
        if value is None or value == "":
            if key in merged:
                merged.pop(key)
                changes[key] = "cleared"
        elif merged.get(key) != value:
            changes[key] = "changed" if key in merged else "set"
            merged[key] = value
    return merged, changes


def validate_config(kind: str, config: Mapping[str, Any] | None) -> BaseConfig:
    """The registry's validation, then the target policy (hosts, URLs, files): field errors by config key."""
    typed = registry.validate_config(kind, config)
    registry.check_targets(kind, typed, target_policy())
    return typed


def _validate(kind: str, auth_type: str, config: Mapping[str, Any] | None, credentials: Mapping[str, Any]) -> None:
    validate_config(kind, config)
    registry.validate_credentials(kind, auth_type, {k: v for k, v in credentials.items() if v is not None})


def _refuse_hub_managed(kind: str, auth_type: str, given: Mapping[str, Any]) -> None:
    """Operators may not type hub-managed credentials (an OAuth2 token comes only from the flow)."""
    managed = {k: v for k, v in given.items() if k in registry.HUB_MANAGED_CREDENTIALS}
    if managed:
        registry.validate_credentials(kind, auth_type, managed, allow_managed=False)


def _full_clean(integration: Integration, exclude: list[str] | None = None) -> None:
    try:
        integration.full_clean(exclude=["credentials", "config", "kind", *(exclude or [])], validate_unique=False)
    except ValidationError as exc:
        errors = {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        raise ConfigError("invalid integration: " + ", ".join(sorted(errors)), errors) from None


@transaction.atomic
def create_integration(
    *,
    actor: Any,
    id: str | None = None,
    name: str,
    kind: str,
    auth_type: str = "none",
    config: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    owner: Any = None,
    enabled: bool = True,
    health_check_interval: int = 60,
) -> Integration:
    """Validate through the registry, store, record a config_change event. Raises ConfigError.

    ``id`` is exact for staff and the hub itself, a prefix for anyone else (``rules.new_id``); omitted, it
    is made from the name. The stored row says which id it got.
    """
    config = dict(config or {})
    clean_credentials, _set = merge_credentials({}, credentials)
    _refuse_hub_managed(kind, auth_type, clean_credentials)
    _validate(kind, auth_type, config, clean_credentials)
    rules.check_file(actor=actor, kind=kind, config=config, owner_id=getattr(owner, "pk", None))
    id = rules.new_id(actor=actor, requested=id, name=name)
    integration = Integration(
        id=id,
        name=name,
        kind=kind,
        auth_type=auth_type,
        config=config,
        credentials=clean_credentials or None,
        owner=owner,
        enabled=enabled,
        health_check_interval=health_check_interval,
    )
    _full_clean(integration)
    integration.save(force_insert=True)
    record_event(
        integration,
        EventType.CONFIG_CHANGE,
        actor=actor_name(actor),
        message="created",
        detail={
            "created": True,
            "fields": sorted(["name", "kind", "auth_type", "config", "enabled", "health_check_interval"]),
            "credentials": sorted(clean_credentials),
        },
    )
    push("created", integration, message=f"{integration.name} created")
    return integration


def _diff_config(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "config") -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if isinstance(old.get(key), Mapping) and isinstance(new.get(key), Mapping):
                changes.update(_diff_config(old[key], new[key], f"{prefix}.{key}"))
            else:
                changes[f"{prefix}.{key}"] = {"from": old.get(key), "to": new.get(key)}
    return changes


@transaction.atomic
def update_integration(integration: Integration, *, actor: Any, **changes: Any) -> Integration:
    """Apply ``changes``; credentials merge (absent key kept, None clears). Raises ConfigError."""
    unknown = sorted(set(changes) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ConfigError(f"cannot change: {', '.join(unknown)}", {name: ["not updatable"] for name in unknown})
    # Work on the current row, locked, so two editors do not lose each other's changes.
    current = Integration.objects.select_for_update().get(pk=integration.pk)
    diff: dict[str, Any] = {}
    for field in ("name", "enabled", "health_check_interval", "auth_type"):
        if field in changes and changes[field] != getattr(current, field):
            diff[field] = {"from": getattr(current, field), "to": changes[field]}
            setattr(current, field, changes[field])
    if "owner" in changes and changes["owner"] != current.owner:
        diff["owner"] = {"from": actor_name(current.owner), "to": actor_name(changes["owner"])}
        current.owner = changes["owner"]
    before_config = dict(current.config or {})
    if "config" in changes:
        new_config = dict(changes["config"] or {})
        diff.update(_diff_config(current.config or {}, new_config))
        current.config = new_config
    credentials = dict(current.credentials or {})
    if "credentials" in changes:
        given = changes["credentials"] or {}
        if not isinstance(given, Mapping):
            raise ConfigError("credentials must be an object", {"credentials": ["must be an object"]})
        _refuse_hub_managed(current.kind, current.auth_type, given)
        credentials, changed = merge_credentials(credentials, given)
        diff.update({f"credentials.{key}": how for key, how in changed.items()})
    _validate(current.kind, current.auth_type, current.config, credentials)
    if "config" in changes or "owner" in diff:
        rules.check_file(
            actor=actor,
            kind=current.kind,
            config=current.config,
            owner_id=current.owner_id,
            integration_id=current.pk,
            before=before_config,
        )
    current.credentials = credentials or None
    _full_clean(current)
    if not diff:
        return current
    connector_changed = any(name.split(".")[0] in _CONNECTOR_FIELDS for name in diff)
    if connector_changed:
        current.config_version += 1
    current.save()
    record_event(
        current,
        EventType.CONFIG_CHANGE,
        actor=actor_name(actor),
        message="changed: " + ", ".join(sorted(diff)),
        detail={"fields": sorted(diff), "changes": diff, "config_version": current.config_version},
    )
    if connector_changed:
        close_connector(current.id, keep_version=current.config_version)
    if "enabled" in diff and not current.enabled:
        close_connector(current.id)
        if current.status != Status.DISCONNECTED:
            set_status(current, Status.DISCONNECTED, message="disabled", actor=actor_name(actor))
    push("updated", current, message="changed: " + ", ".join(sorted(diff)), fields=sorted(diff))
    return current


def set_sharing(integration: Integration, groups: Iterable[Any], *, actor: Any) -> None:
    """Share with exactly ``groups`` (admin, API); a change is recorded as a config_change event."""
    before = sorted(integration.shared_with_groups.values_list("name", flat=True))
    integration.shared_with_groups.set(groups)
    after = sorted(integration.shared_with_groups.values_list("name", flat=True))
    if before != after:
        record_event(
            integration,
            EventType.CONFIG_CHANGE,
            actor=actor_name(actor),
            message="changed: shared_with_groups",
            detail={"fields": ["shared_with_groups"], "changes": {"shared_with_groups": {"from": before, "to": after}}},
        )


@transaction.atomic
def delete_integration(integration_id: str, *, actor: Any) -> None:
    """Disconnect everywhere, then delete; the events stay (integration_ref keeps the id)."""
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise Integration.DoesNotExist(f"no integration {integration_id!r}")
    close_connector(integration_id)
    record_event(
        integration, EventType.CONFIG_CHANGE, actor=actor_name(actor), message="deleted", detail={"deleted": True}
    )
    push("deleted", integration, status=Status.DISCONNECTED, message=f"{integration.name} deleted")
    integration.delete()
    transaction.on_commit(lambda: connector_runtime.forget_shared_state(integration_id))
