"""Field types of the API's serializers: JSON types taken strictly, config and credentials objects, and the
OpenAPI schemas that describe them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

SECRETS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "boolean"},
    "description": "Which credential fields are stored (true) or not (false). Values are never returned.",
    "example": {"password": True, "api_key": False},
}
CREDENTIALS_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "string", "nullable": True},
    "description": "Write-only. Keys omitted on update keep their stored value; a key set to null clears it. "
    "Fields per kind: GET /api/connector-types.",
    "example": {"username": "hub", "password": "<secret>"},
}
CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": "Non-secret settings, validated against the kind's config_schema (GET /api/connector-types).",
    "example": {"host": "db.example.com", "port": 5432, "database": "hr"},
}


def _contains_nul(value: Any) -> bool:
    """PostgreSQL's jsonb refuses U+0000; catch it here as a 400 instead of a database error.

    Walked with a stack, not recursion: a config nested a few hundred levels deep must not exhaust
    Python's recursion limit (that was a 500).
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# DRF coerces JSON types (123 -> "123", 1 -> True, "60" -> 60). A client that sends the wrong type has
# a bug worth hearing about, so these fields take only the JSON type the schema documents.
class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictSlugRelatedField(serializers.SlugRelatedField):
    """A name (string) of an existing row; NUL would reach PostgreSQL as a query error, so it is refused here."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(CONFIG_SCHEMA)
class ConfigField(serializers.DictField):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if _contains_nul(value):
            raise serializers.ValidationError("Null characters are not allowed.")
        return value


@extend_schema_field(CREDENTIALS_SCHEMA)
class CredentialsField(serializers.DictField):
    child = StrictCharField(allow_null=True, allow_blank=True, trim_whitespace=False)
