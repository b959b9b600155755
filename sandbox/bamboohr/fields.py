"""Employee fields as BambooHR reads and shows them: names or numeric ids asked for, the values it
shows, the field list of a listing (JSON and XML), and the checks on a write (400 / 409)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.bamboohr import data
from sandbox.bamboohr.data import Company
from sandbox.bamboohr.wire import Fail, is_date

MAX_FIELDS = 400


def field_names(names: Iterable[Any]) -> list[str]:
    """Field aliases from aliases or numeric ids (unknown ones kept: callers leave them out); 400
    past ``MAX_FIELDS``."""
    names = list(names)
    if len(names) > MAX_FIELDS:
        raise Fail(400, f"A maximum of {MAX_FIELDS} fields may be requested")
    return [data.FIELD_ALIAS_BY_ID.get(str(n), str(n)) for n in names]


def shown(alias: str, value: str | None) -> str | None:
    if value is None and alias in data.DATE_FIELDS:
        return "0000-00-00"  # how BambooHR shows a date it does not have
    return value


def field_meta(fields: Iterable[str]) -> list[dict[str, Any]]:
    """The ``fields`` header of a directory or report."""
    return [{"id": f, "type": data.FIELD_BY_ALIAS[f][2], "name": data.FIELD_BY_ALIAS[f][1]} for f in fields]


def add_employees_xml(root: ET.Element, rows: Iterable[Mapping[str, Any]], fields: list[str]) -> None:
    """``<employees><employee id=..><field id=..>value</field>...`` under ``root``."""
    container = ET.SubElement(root, "employees")
    for row in rows:
        node = ET.SubElement(container, "employee", id=row["id"])
        for f in fields:
            ET.SubElement(node, "field", id=f).text = row.get(f) or ""


def check_values(company: Company, values: Mapping[str, Any], *, exclude: int | None = None) -> dict[str, str | None]:
    """Validate written fields the way BambooHR does: 400 for unknown fields, 409 for bad values."""
    clean: dict[str, str | None] = {}
    for key, value in values.items():
        alias = data.FIELD_ALIAS_BY_ID.get(str(key), str(key))
        if alias not in data.FIELD_BY_ALIAS and alias != "age":
            raise Fail(400, f"Unknown field: {alias}")
        if alias in data.READ_ONLY_FIELDS:
            continue
        if value is not None and not isinstance(value, str | int | float | bool):
            raise Fail(400, f"Invalid value for field {alias}: expected text")
        text = None if value is None or value == "" else str(value).strip()
        clean[alias] = None if text is None else _checked(company, alias, text)
    email_value = clean.get("workEmail")
    if email_value:
        for eid, rec in company.employees.items():
            if eid != exclude and (rec.get("workEmail") or "").lower() == email_value.lower():
                raise Fail(409, "Duplicate email: another employee already has this work email")
    return clean


def _checked(company: Company, alias: str, text: str) -> str | None:
    """One value, normalised as BambooHR stores it (409 when its type refuses it)."""
    ftype = data.FIELD_BY_ALIAS[alias][2]
    if ftype == "date":
        if text == "0000-00-00":
            return None
        if not is_date(text):
            raise Fail(409, f"Invalid date for field {alias}: {text} (expected YYYY-MM-DD)")
    elif ftype == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise Fail(409, f"Invalid email address for field {alias}")
    elif ftype == "status":
        if text.lower() not in ("active", "inactive"):
            raise Fail(409, "Invalid value for field status: use Active or Inactive")
        return text.capitalize()
    elif ftype == "checkbox":
        if text.lower() not in ("yes", "no", "true", "false", "1", "0"):
            raise Fail(409, f"Invalid value for field {alias}: use yes or no")
        return "yes" if text.lower() in ("yes", "true", "1") else "no"
    elif ftype == "list":
        options = {o.lower(): o for o in company.options.get(alias, [])}
        if text.lower() not in options:
            raise Fail(409, f"Invalid value for field {alias}: '{text}' is not one of its list options")
        return options[text.lower()]
    elif alias == "supervisorEId" and (not text.isdigit() or int(text) not in company.employees):
        raise Fail(409, "Invalid value for field supervisorEId: no such employee")
    return text
