"""BambooHR's webhook deliveries, as its docs define them (README §4.12): the signature check and the
payloads. Plain Python: the hub's receiver (integrations.sync) calls these.

Signature: ``X-BambooHR-Signature`` is the lowercase hex HMAC-SHA256, keyed by the webhook's private key, of
the raw body followed directly by ``X-BambooHR-Timestamp`` (Unix seconds). Payloads: event-based
``{"type": "employee.updated", "timestamp", "data": {"companyId", "employeeId", "changedFields"}}`` or the
legacy field-based ``{"employees": [{"action", "changedFields", "fields", "id", "timestamp"}]}``, as JSON or
form-encoded (``data[employeeId]=…``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

WINDOW_SECONDS = 300  # a delivery signed more than 5 minutes away from now is stale (Nango's window too)
MAX_BODY_BYTES = 256 * 1024


class DeliveryRefused(Exception):
    """Why a delivery is not accepted; the message is safe to record and to answer."""


@dataclass(frozen=True)
class Delivery:
    event_type: str  # employee.created / employee.updated / employee.deleted (legacy: from the action)
    employee_ids: list[str]
    deleted: bool


def verify(private_key: str, body: bytes, timestamp: str, signature: str, *, now: float) -> None:
    """Raise DeliveryRefused unless the signature is BambooHR's over ``body`` + ``timestamp`` and recent."""
    if not private_key:
        raise DeliveryRefused("no webhook key is stored for this integration")
    if len(body) > MAX_BODY_BYTES:
        raise DeliveryRefused(f"body larger than {MAX_BODY_BYTES} bytes")
    if not timestamp.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", signature or ""):
        raise DeliveryRefused("missing or malformed X-BambooHR-Timestamp / X-BambooHR-Signature")
    expected = hmac.new(private_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise DeliveryRefused("signature does not match")
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise DeliveryRefused(f"timestamp more than {WINDOW_SECONDS} s from now")


def parse(body: bytes, content_type: str) -> Delivery:
    """The event and the employees it names, from either payload style and either format."""
    if "form" in content_type:
        flat = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        payload: object = _unflatten(flat)
    else:
        try:
            payload = json.loads(body or b"null")
        except ValueError as exc:
            raise DeliveryRefused("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise DeliveryRefused("body is not an object")
    if isinstance(payload.get("type"), str) and isinstance(payload.get("data"), dict):
        employee = payload["data"].get("employeeId")
        ids = [str(employee)] if employee not in (None, "") else []
        return Delivery(payload["type"], ids, payload["type"].endswith(".deleted"))
    employees = payload.get("employees")
    if isinstance(employees, dict):  # form-encoded lists arrive as {"0": {...}}
        employees = list(employees.values())
    if isinstance(employees, list) and employees:
        actions = {str(e.get("action", "")).lower() for e in employees if isinstance(e, dict)}
        ids = [str(e["id"]) for e in employees if isinstance(e, dict) and e.get("id") not in (None, "")]
        action = actions.pop() if len(actions) == 1 else "updated"
        return Delivery(f"employee_with_fields.{action}", ids, action == "deleted")
    raise DeliveryRefused("not a BambooHR employee event")


def _unflatten(flat: dict[str, str]) -> dict[str, object]:
    """``data[employeeId]=7`` -> ``{"data": {"employeeId": "7"}}``."""
    root: dict[str, object] = {}
    for key, value in flat.items():
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if parts:
                node[parts[-1]] = value
    return root
