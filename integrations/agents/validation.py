"""Checks of a profile's rows before they are saved: every unknown name is named.

``validate_grant(grant) -> {"field": [messages]}`` (empty: valid) is the one entry point for a grant;
the database part reads the integration's schema through ``services.run_operation`` (``list_tables``,
``describe_table``). A database role's privileges are checked by the tools' database side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors import registry
from connectors.datapolicy.hris_fields import (
    BAMBOOHR_EMPLOYEES,
    BAMBOOHR_TIME_OFF,
    EMPLOYEES,
    TIME_OFF,
    FieldClass,
)
from connectors.errors import ConnectorError

HRIS_KEYS = {"classes", "fields", "scope", "redact", "pseudonymize"}
SCOPE_KEYS = {"departments", "divisions", "locations", "active_only", "reports_of", "indirect"}
DATABASE_KEYS = {"tables", "role"}
CLASS_NAMES = [c.value for c in FieldClass]


def unknown_tools(tools: Any) -> list[str]:
    """Messages for a tools value that is not null or a list of catalog names."""
    import integrations.tools.catalog as catalog

    if tools is None:
        return []
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        return ["must be a JSON list of tool names, or null for every tool"]
    unknown = sorted(set(tools) - set(catalog.names()))
    if unknown:
        return [f"unknown tool(s): {', '.join(unknown)}; the catalog has {', '.join(catalog.names())}"]
    return []


def _family(integration: Any) -> str:
    try:
        return str(registry.get(integration.kind).family)
    except ConnectorError:
        return ""


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value)


def known_hris_fields(integration_id: str) -> set[str]:
    from django.apps import apps

    CustomFieldClass = apps.get_model("agents", "CustomFieldClass")  # no import: the models call this module
    names: set[str] = set()
    for catalog in (BAMBOOHR_EMPLOYEES, BAMBOOHR_TIME_OFF, EMPLOYEES, TIME_OFF):
        names |= set(catalog.classes)
    names |= set(CustomFieldClass.objects.filter(integration_id=integration_id).values_list("field", flat=True))
    return names


def validate_hris(rules: Any, integration_id: str) -> list[str]:
    if not isinstance(rules, Mapping):
        return ["must be a JSON object"]
    errors: list[str] = []
    extra = sorted(set(rules) - HRIS_KEYS)
    if extra:
        errors.append(f"unknown key(s): {', '.join(extra)}; use {', '.join(sorted(HRIS_KEYS))}")
    classes = rules.get("classes", [])
    if not _strings(classes):
        errors.append("classes: must be a list of class names")
    else:
        bad = sorted(set(map(str, classes)) - set(CLASS_NAMES))
        if bad:
            errors.append(f"classes: unknown field class(es): {', '.join(bad)}; use {', '.join(CLASS_NAMES)}")
    fields = rules.get("fields", [])
    if not _strings(fields):
        errors.append("fields: must be a list of field names")
    else:
        bad = sorted(set(map(str, fields)) - known_hris_fields(integration_id))
        if bad:
            errors.append(
                f"fields: unknown field(s): {', '.join(bad)} (class a custom field first, under custom field classes)"
            )
    scope = rules.get("scope", {})
    if not isinstance(scope, Mapping):
        errors.append("scope: must be a JSON object")
    else:
        extra = sorted(set(scope) - SCOPE_KEYS)
        if extra:
            errors.append(f"scope: unknown key(s): {', '.join(extra)}; use {', '.join(sorted(SCOPE_KEYS))}")
        for key in ("departments", "divisions", "locations", "reports_of"):
            if key in scope and not _strings(scope[key]):
                errors.append(f"scope.{key}: must be a list")
        for key in ("active_only", "indirect"):
            if key in scope and not isinstance(scope[key], bool):
                errors.append(f"scope.{key}: must be true or false")
    redact = rules.get("redact", False)
    if not isinstance(redact, bool):
        if not _strings(redact):
            errors.append("redact: must be true, false or a list of PII entity names")
        else:
            from connectors.datapolicy.pii import RedactionPolicy  # presidio: imported only when needed

            try:
                RedactionPolicy(entities=tuple(map(str, redact)))
            except ValueError as exc:
                errors.append(f"redact: {exc}")
    if "pseudonymize" in rules and not isinstance(rules["pseudonymize"], bool):
        errors.append("pseudonymize: must be true or false")
    return errors


def validate_database(rules: Any, integration_id: str) -> list[str]:
    if not isinstance(rules, Mapping):
        return ["must be a JSON object"]
    errors: list[str] = []
    extra = sorted(set(rules) - DATABASE_KEYS)
    if extra:
        errors.append(f"unknown key(s): {', '.join(extra)}; use {', '.join(sorted(DATABASE_KEYS))}")
    role = rules.get("role")
    if role is not None and not (isinstance(role, str) and role.strip()):
        errors.append("role: must be a role name")
    tables = rules.get("tables")
    if tables is None:
        return errors
    if not isinstance(tables, Mapping) or not all(
        v == "*" or (isinstance(v, list) and all(isinstance(c, str) for c in v)) for v in tables.values()
    ):
        return [*errors, 'tables: must map each table to a list of columns or "*"']
    errors.extend(_schema_errors(integration_id, tables))
    if not errors and isinstance(role, str) and role.strip():
        # The role's privileges, read from the server: refused when it can read beyond the list.
        from integrations.models import Integration
        from integrations.tools.database_policy import role_errors

        integration = Integration.objects.filter(pk=integration_id).first()
        if integration is not None:
            errors.extend(role_errors(integration, tables, role))
    return errors


def _schema_errors(integration_id: str, tables: Mapping[str, Any]) -> list[str]:
    """Unknown tables and columns, read from the integration itself."""
    from integrations.services import run_operation

    try:
        present = {str(t).lower(): str(t) for t in run_operation(integration_id, "list_tables")}
        unknown_tables = sorted(t for t in tables if t.lower() not in present)
        errors = [f"tables: unknown table(s): {', '.join(unknown_tables)}"] if unknown_tables else []
        for table, columns in tables.items():
            if columns == "*" or table.lower() not in present:
                continue
            described = run_operation(integration_id, "describe_table", present[table.lower()])
            names = {_column_name(c).lower() for c in described}
            bad = sorted(c for c in columns if c.lower() not in names)
            if bad:
                errors.append(f"tables: unknown column(s) in {table}: {', '.join(bad)}")
        return errors
    except ConnectorError as exc:
        return [f"tables: could not read the schema of {integration_id} to check them ({exc.message})"]


def _column_name(column: Any) -> str:
    if isinstance(column, Mapping):
        return str(column.get("name", ""))
    return str(getattr(column, "name", column))


def validate_grant(grant: Any) -> dict[str, list[str]]:
    """Errors by field (``hris``, ``database``) for a ProfileGrant (saved or not)."""
    errors: dict[str, list[str]] = {}
    integration = getattr(grant, "integration", None) if grant.integration_id else None
    if integration is None:
        return errors
    family = _family(integration)
    if grant.hris:
        if family != "hris":
            errors["hris"] = [f"{integration.pk} is not an HRIS integration"]
        elif problems := validate_hris(grant.hris, integration.pk):
            errors["hris"] = problems
    if grant.database:
        if family != "database":
            errors["database"] = [f"{integration.pk} is not a database integration"]
        elif problems := validate_database(grant.database, integration.pk):
            errors["database"] = problems
    return errors
