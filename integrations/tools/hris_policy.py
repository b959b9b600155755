"""An HRIS tool call under a profile's data policy (``ctx.grant.hris``), enforced where the data is.

- Fields: only the fields the profile allows are requested from BambooHR (``PolicedBambooHR``, which
  asks for a custom report of the allowed fields); the answer says which wanted fields were
  ``withheld``. Custom fields are classed by the operator (``HrisRules.field_classes``); an unclassed
  one is restricted. Time-off notes are ``special``: without that class they are not even asked for
  (``excludeNote``).
- Record scope: listings keep only the employees (and their time off) inside the scope and count the
  others; a read by id, a write, a time-off request or decision for someone outside it is a
  permission error naming the rule.
- Redaction: free-text fields (notes, comments) pass ``connectors.datapolicy.pii.Redactor`` when the
  profile has a redaction policy (presidio is imported only then).
- Pseudonyms: employee ids and e-mails become keyed HMAC pseudonyms (key derived from
  CREDENTIALS_KEY and the integration id); the reverse map lives in Redis so that a later call naming
  a pseudonym is mapped back, and a pseudonym the hub never minted is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from connectors.datapolicy.hris_fields import (
    BAMBOOHR_EMPLOYEES,
    EMPLOYEE_TO_BAMBOOHR,
    TIME_OFF,
    unified_to_bamboohr,
)
from connectors.datapolicy.hris_scope import scope_error
from connectors.http.bamboohr import BambooHRConnector
from connectors.http.bamboohr_policy import PolicedBambooHR
from connectors.http.bamboohr_shapes import to_employee
from integrations import services
from integrations.agents.access import HrisRules
from integrations.redis_clients import redis_client
from integrations.tools import scope_cache
from integrations.tools.context import ToolContext, jsonable
from integrations.tools.errors import ToolError

if TYPE_CHECKING:
    from connectors.datapolicy.pii import Pseudonymizer, RedactionPolicy, Redactor

FREE_TEXT = ("notes", "comments", "note")
# Result keys that hold an employee id or an e-mail, pseudonymised when the profile asks for it.
ID_KEYS = ("id", "manager_id", "employee_id")
EMAIL_KEYS = ("email",)
# Filters and write fields that may carry a pseudonym, mapped back before anything is sent.
ID_INPUTS = ("id", "ids", "employee_ids", "manager_id", "employee_id", "employeeId", "supervisorEId")
EMAIL_INPUTS = ("email", "workEmail")
_ANY_DAY = {"start": "1900-01-01", "end": "2999-12-31"}


def rules_of(ctx: ToolContext) -> HrisRules | None:
    return ctx.grant.hris if ctx.grant is not None else None


class _RedisReverse(MutableMapping[str, str]):
    """pseudonym -> real value, one Redis hash per integration (shared by every worker)."""

    def __init__(self, integration_id: str) -> None:
        self.key = f"hub:agents:pseudonyms:{integration_id}"
        self.client = redis_client()

    def __getitem__(self, pseudonym: str) -> str:
        value = self.client.hget(self.key, pseudonym)
        if value is None:
            raise KeyError(pseudonym)
        return value.decode() if isinstance(value, bytes) else str(value)

    def __setitem__(self, pseudonym: str, real: str) -> None:
        self.client.hset(self.key, pseudonym, real)

    def __delitem__(self, pseudonym: str) -> None:
        self.client.hdel(self.key, pseudonym)

    def __iter__(self) -> Iterator[str]:
        return (k.decode() if isinstance(k, bytes) else str(k) for k in self.client.hkeys(self.key))

    def __len__(self) -> int:
        return int(self.client.hlen(self.key))


_REDACTORS: dict[str, Redactor] = {}


def _redactor(policy: RedactionPolicy, pseudonyms: Pseudonymizer | None) -> Redactor:
    """A Redactor per policy, kept for the process (building one loads Presidio's recognizers, several
    ms); one that writes e-mail pseudonyms is built per call, since it holds the call's Pseudonymizer."""
    from connectors.datapolicy.pii import Redactor

    if "pseudonym" in policy.actions.values():
        return Redactor(policy, pseudonyms)
    key = repr(policy)  # a frozen dataclass of plain values: its repr names it
    found = _REDACTORS.get(key)
    if found is None:
        found = _REDACTORS[key] = Redactor(policy)
    return found


def pseudonym_key(integration_id: str) -> bytes:
    """The HMAC key for one integration's pseudonyms, derived from CREDENTIALS_KEY (never stored)."""
    label = f"integration-hub agent pseudonyms\x00{integration_id}".encode()
    return hmac.new(settings.CREDENTIALS_KEY.encode(), label, hashlib.sha256).digest()


class HrisPolicy:
    """One call's policy over the integration's live BambooHR connector."""

    def __init__(self, ctx: ToolContext, rules: HrisRules) -> None:
        connector = services.connector_for(ctx.integration)
        if not isinstance(connector, BambooHRConnector):
            raise ToolError(
                "permission",
                f"this profile has an HRIS data policy, which {ctx.integration.kind} integrations do not support",
            )
        connector.ensure_connected()
        self.rules = rules
        catalog = BAMBOOHR_EMPLOYEES.with_classes(rules.field_classes) if rules.field_classes else BAMBOOHR_EMPLOYEES
        self.policed = PolicedBambooHR(connector, rules.access, rules.scope, catalog)
        self.connector = connector
        self._pseudonyms: Pseudonymizer | None = None
        self._redactor: Redactor | None = None
        self.integration_id = ctx.integration.id
        self.version = f"{ctx.integration.created_at.timestamp()}:{ctx.integration.config_version}"

    # --- pseudonyms and redaction ------------------------------------------------------------
    @property
    def pseudonyms(self) -> Pseudonymizer | None:
        if not self.rules.pseudonymize:
            return None
        if self._pseudonyms is None:
            from connectors.datapolicy.pii import Pseudonymizer

            self._pseudonyms = Pseudonymizer(pseudonym_key(self.integration_id), _RedisReverse(self.integration_id))
        return self._pseudonyms

    def reveal(self, value: Any) -> Any:
        """A pseudonym (or a list of them) the agent sent, mapped back; an unknown one is refused."""
        if self.pseudonyms is None or value in (None, ""):
            return value
        if isinstance(value, list | tuple):
            return [self.reveal(v) for v in value]
        return self.pseudonyms.reveal(str(value))

    def reveal_inputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(values)
        if self.pseudonyms is None:
            return out
        for name in (*ID_INPUTS, *EMAIL_INPUTS):
            if out.get(name) not in (None, ""):
                out[name] = self.reveal(out[name])
        return out

    def _outgoing(self, item: dict[str, Any]) -> dict[str, Any]:
        if self.rules.redaction is not None:
            if self._redactor is None:
                self._redactor = _redactor(self.rules.redaction, self.pseudonyms)
            item = self._redactor.redact_fields(item, FREE_TEXT)
            if isinstance(item.get("raw"), Mapping):
                item["raw"] = self._redactor.redact_fields(item["raw"], FREE_TEXT)
        pseudonyms = self.pseudonyms
        if pseudonyms is not None:
            for name in ID_KEYS:
                if item.get(name) not in (None, ""):
                    item[name] = pseudonyms.employee_id(item[name])
            for name in EMAIL_KEYS:
                if isinstance(item.get(name), str) and item[name]:
                    item[name] = pseudonyms.email(item[name])
            raw = item.get("raw")
            if isinstance(raw, dict):
                for name in ("id", "supervisorEId"):
                    if raw.get(name) not in (None, ""):
                        raw[name] = pseudonyms.employee_id(raw[name])
                if isinstance(raw.get("workEmail"), str) and raw["workEmail"]:
                    raw["workEmail"] = pseudonyms.email(raw["workEmail"])
        return item

    # --- reads -------------------------------------------------------------------------------
    def employees(self, filters: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str], int]:
        answer = self.policed.list_employees(self.reveal_inputs(filters), unified=True)
        items = [self._outgoing(jsonable(r)) for r in answer.data]
        return items, answer.withheld, answer.out_of_scope

    def employee(self, employee_id: Any, fields: list[str] | None) -> tuple[dict[str, Any], list[str]]:
        real = self.reveal(employee_id)
        if not fields:
            answer = self.policed.get_employee(real, unified=True)
            return self._outgoing(jsonable(answer.data)), answer.withheld
        answer = self.policed.get_employee(real, unified_to_bamboohr(fields))
        raw = dict(answer.data)
        shown = {k for k, alias in EMPLOYEE_TO_BAMBOOHR.items() if alias in raw}
        unified = {k: v for k, v in to_employee(raw, False).as_dict().items() if k in shown or k == "id"}
        return self._outgoing({**jsonable(unified), "raw": jsonable(raw)}), answer.withheld

    def in_scope_ids(self) -> set[str] | None:
        """The ids inside the record scope (None: no scope), for listings only: kept for a short
        while (``scope_cache``); writes check their target live."""
        scope = self.rules.scope
        if scope is None or scope.unrestricted:
            return None

        def live() -> set[str]:
            answer = self.policed.list_employees(fields=["id"], unified=True)
            return {str(r["id"]) for r in answer.data}

        return scope_cache.in_scope_ids(self.integration_id, scope_cache.scope_name(scope, self.version), live)

    def time_off(self, filters: dict[str, Any], cap: int) -> tuple[list[dict[str, Any]], list[str], int]:
        """Requests inside the scope, the first ``cap + 1`` of them shaped and redacted (the caller
        shows ``cap`` and says whether there were more: redacting the rest would be wasted)."""
        filters = self.reveal_inputs(filters)
        notes_allowed = self.rules.access.allows("notes", TIME_OFF)
        if not notes_allowed:
            filters["exclude_note"] = True  # never asked for, not fetched and hidden
        records = [jsonable(r) for r in self.connector.list_time_off_requests(filters, unified=True)]
        allowed_ids = self.in_scope_ids()
        kept = [r for r in records if allowed_ids is None or str(r.get("employee_id")) in allowed_ids]
        withheld: set[str] = set()
        items = []
        for record in kept[: cap + 1]:
            record.pop("raw", None)
            for key in list(record):
                if not self.rules.access.allows(key, TIME_OFF):
                    record.pop(key)
                    withheld.add(key)
            items.append(self._outgoing(record))
        return items, sorted(withheld), len(records) - len(kept)

    # --- writes ------------------------------------------------------------------------------
    def check_employee_write(self, employee_id: Any, data: Mapping[str, Any]) -> str:
        """The real id; refused when a written field is hidden from the profile or the employee is
        (or would be moved) outside the record scope."""
        real = str(self.reveal(employee_id))
        hidden = sorted(
            k for k in data if not self.rules.access.allows(unified_to_bamboohr([k])[0], self.policed.catalog)
        )
        if hidden:
            raise ToolError("permission", f"writing {', '.join(hidden)} is not allowed by this profile")
        self.policed.check_write_scope(real, data)
        return real

    def check_new_employee(self, data: Mapping[str, Any]) -> None:
        hidden = sorted(k for k in data if not self.rules.access.allows(k, self.policed.catalog))
        if hidden:
            raise ToolError("permission", f"writing {', '.join(hidden)} is not allowed by this profile")
        scope = self.rules.scope
        if scope is None or scope.unrestricted:
            return
        record = {
            "id": "new",
            "status": "active",
            **{k: v for k, v in to_employee(dict(data), False).as_dict().items()},
        }
        reason = scope.violation(record, team=self.policed._team())
        if reason is not None:
            raise scope_error(
                f"write refused: the new employee would be outside this profile's record scope ({reason})"
            )

    def check_time_off_request(self, request_id: Any) -> None:
        """A decision on a request: refused when its employee is outside the scope."""
        scope = self.rules.scope
        if scope is None or scope.unrestricted:
            return
        found = self.connector.list_time_off_requests({**_ANY_DAY, "id": request_id, "exclude_note": True})
        if not found:
            raise ToolError("not_found", f"no time-off request {request_id}")
        self.policed.check_write_scope(str(found[0].get("employeeId")), {})
