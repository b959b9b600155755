"""The one explicit table of connector kinds. Classes are imported lazily, on first use."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from pydantic import ValidationError

from connectors.base import BaseConfig, Connector
from connectors.errors import ConfigError
from connectors.policy import TargetPolicy
from connectors.runtime import Runtime

# kind -> (label, dotted path). The label sits here too so that choices need no import.
CONNECTORS: dict[str, tuple[str, str]] = {
    "bamboohr": ("BambooHR", "connectors.http.bamboohr.BambooHRConnector"),
    "postgresql": ("PostgreSQL", "connectors.db.postgresql.PostgreSQLConnector"),
    "mysql": ("MySQL / MariaDB", "connectors.db.mysql.MySQLConnector"),
    "sqlite": ("SQLite", "connectors.db.sqlite.SQLiteConnector"),
}

_cache: dict[str, type[Connector[Any]]] = {}


def kinds() -> list[str]:
    return list(CONNECTORS)


def get(kind: str) -> type[Connector[Any]]:
    if kind not in CONNECTORS:
        raise ConfigError(
            f"unknown kind {kind!r}; expected one of: {', '.join(CONNECTORS)}", {"kind": ["unknown kind"]}
        )
    if kind not in _cache:
        module_path, _, class_name = CONNECTORS[kind][1].rpartition(".")
        _cache[kind] = getattr(import_module(module_path), class_name)
    return _cache[kind]


def choices() -> list[tuple[str, str]]:
    return [(kind, label) for kind, (label, _path) in CONNECTORS.items()]


def validate_config(kind: str, config: Mapping[str, Any] | None) -> BaseConfig:
    """Validate once, at the boundary; field-level errors in ``ConfigError.errors``."""
    cls = get(kind)
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError("config must be a JSON object", {"config": ["must be a JSON object"]})
    try:
        return cls.config_class.model_validate(dict(config or {}))
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]) or "config"
            errors.setdefault(name, []).append(err["msg"])
        raise ConfigError(
            "invalid config: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()), errors
        ) from None


def check_targets(kind: str, config: BaseConfig, policy: TargetPolicy) -> None:
    """Refuse a config that points where ``policy`` forbids (hosts, URLs, files): field errors as above."""
    errors = policy.field_errors(get(kind).targets(config))
    if errors:
        raise ConfigError("refused: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()), errors)


# Credentials the hub writes itself (never typed by an operator), valid on every kind.
HUB_MANAGED_CREDENTIALS = frozenset({"oauth_token"})


def validate_credentials(
    kind: str, auth_type: str, credentials: Mapping[str, Any], *, allow_managed: bool = True
) -> None:
    """``allow_managed=False`` for operator input: only the hub may write e.g. ``oauth_token``."""
    cls = get(kind)
    errors: dict[str, list[str]] = {}
    if auth_type not in cls.auth_types:
        errors["auth_type"] = [f"{cls.label} supports: {', '.join(cls.auth_types)}"]
    known = {f.name for f in cls.credential_fields}
    for name in credentials:
        if name in HUB_MANAGED_CREDENTIALS:
            if not allow_managed:
                errors.setdefault(name, []).append("set by the hub (OAuth2 flow), not by hand")
        elif name not in known:
            errors.setdefault(name, []).append("unknown credential field")
    for f in cls.credential_fields:
        if f.required_for and auth_type in f.required_for and not credentials.get(f.name):
            errors.setdefault(f.name, []).append("required for this auth type")
    if errors:
        raise ConfigError("invalid credentials: " + ", ".join(sorted(errors)), errors)


def describe(kind: str) -> dict[str, Any]:
    """What forms and API clients need to know about a kind (no values, only shapes)."""
    cls = get(kind)
    return {
        "kind": kind,
        "label": cls.label,
        "family": cls.family,
        "auth_types": list(cls.auth_types),
        "config_schema": cls.config_class.model_json_schema(),
        "credential_fields": [
            {"name": f.name, "label": f.label, "secret": f.secret, "required_for": list(f.required_for), "help": f.help}
            for f in cls.credential_fields
        ],
    }


def build(
    kind: str,
    config: Mapping[str, Any] | BaseConfig,
    credentials: Mapping[str, str] | None = None,
    runtime: Runtime | None = None,
    *,
    auth_type: str | None = None,
) -> Connector[Any]:
    """A ready-to-connect connector (``connect()`` is the caller's, usually the service layer's)."""
    cls = get(kind)
    typed = config if isinstance(config, BaseConfig) else validate_config(kind, config)
    return cls(typed, credentials or {}, runtime, auth_type=auth_type)
