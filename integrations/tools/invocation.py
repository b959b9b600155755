"""Running a tool: who may, on what, audited, in a worker with a time limit.

``invoke`` (web process, MCP server, Python callers) validates the arguments against the tool's
schema, checks the caller's scope, refuses at once when the integration is unavailable, records a
ToolCall, and dispatches the call to a Celery worker (``run_tool``, below), waiting for the envelope
by default. ``execute`` (the worker) runs the implementation and completes the ToolCall.

Every call answers with the envelope ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
{"category", "message", "retry_after", "permanent"}}``, plus ``call_id`` (the audit record).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from connectors import registry
from connectors.errors import ConnectorError, wait_seconds
from integrations import hub_outage, services
from integrations.agents import quotas
from integrations.agents.access import AgentAccess
from integrations.agents.services import access_for_token
from integrations.models import Integration
from integrations.services.events import record_event
from integrations.task_base import hub_task
from integrations.tools import catalog, conf, outbox, sql_guard
from integrations.tools.context import ToolContext
from integrations.tools.errors import ToolError
from integrations.tools.models import AgentToken, Outcome, ToolCall, Via

log = logging.getLogger(__name__)

# Argument names whose values never reach the audit trail.
SECRET_KEY_PATTERN = re.compile(
    r"pass(word|wd)?|secret|token|api_?key|auth|credential|private|ssn|social_?security|sin\b|tax_?id|"
    r"bank|iban|account_?number|routing",
    re.I,
)
MASK = "********"


@dataclass
class Principal:
    """Who is calling: an agent token, a staff user, or trusted Python code in this process."""

    actor: str
    token: AgentToken | None = None
    user: Any = None
    trusted: bool = False
    _integration_ids: set[str] | None = field(default=None, repr=False)
    _access: AgentAccess | None = field(default=None, repr=False)

    @classmethod
    def for_token(cls, token: AgentToken) -> Principal:
        return cls(actor=f"token:{token.name}#{token.pk}", token=token)

    @classmethod
    def for_user(cls, user: Any) -> Principal:
        return cls(actor=f"user:{user.get_username()}", user=user)

    @classmethod
    def local(cls, actor: str = "python") -> Principal:
        return cls(actor=actor, trusted=True)

    def access(self) -> AgentAccess | None:
        """The token's profile as plain values (built once per call); None: unrestricted (staff, Python)."""
        if self.token is None:
            return None
        if self._access is None:
            self._access = access_for_token(self.token)
        return self._access

    def integration_ids(self) -> set[str] | None:
        """The integrations this principal may use; None means all."""
        access = self.access()
        return None if access is None else set(access.grants)

    def check_tool(self, tool: catalog.Tool) -> None:
        """Refuse a tool the caller's profile does not list, naming the rule."""
        access = self.access()
        if access is not None and not access.may_use_tool(tool.name):
            raise ToolError(
                "permission",
                f"profile {access.profile_name!r} does not allow the tool {tool.name!r} "
                f"(its tools: {', '.join(sorted(access.tools or ())) or 'none'})",
            )

    def check(self, tool: catalog.Tool, integration_id: str) -> bool:
        """Raise ToolError(permission) unless allowed; return whether this principal may write."""
        if self.trusted:
            return True
        if self.token is not None:
            if not self.token.is_active:
                raise ToolError("permission", "this token is revoked or expired")
            access = self.access()
            grant = access.grant_for(integration_id) if access is not None else None
            if access is None or grant is None:
                name = access.profile_name if access is not None else self.token.name
                raise ToolError(
                    "permission",
                    f"this token may not use integration {integration_id!r}: profile {name!r} has no grant on it",
                )
            may_write = grant.write
        elif self.user is not None and self.user.is_active and self.user.is_staff:
            may_write = True
        else:
            raise ToolError("permission", "tool calls need an agent token or a staff account")
        if tool.access == "write" and not may_write:
            raise ToolError("permission", f"{tool.name} writes: this token's grant on {integration_id!r} is read-only")
        return may_write

    def take_quota(
        self, tool: catalog.Tool, integration_id: str, arguments: Mapping[str, Any], may_write: bool
    ) -> None:
        """Spend one call (and one write: a write tool, or a writing statement of query_database) of the
        profile's quotas, or refuse with quota_exceeded."""
        access = self.access()
        if access is None or not access.quota_key:
            return
        write = tool.access == "write" or (
            may_write and tool.name == "query_database" and sql_guard.kind_of(str(arguments["query"])) == "write"
        )
        refusal = quotas.take(access.quota_key, access.quotas, write=write)
        if refusal is None:
            return
        message = (
            f"quota_exceeded: profile {access.profile_name!r} has used its {refusal.quota.replace('_', ' ')} "
            f"({refusal.limit}); retry after {wait_seconds(refusal.retry_after)} s"
        )
        if quotas.note_once(access.quota_key, refusal.quota):  # one event per window, not per refused call
            record_event(
                integration_id,
                "operation",
                ok=False,
                actor=self.actor,
                message=message,
                detail={"quota": refusal.quota, "limit": refusal.limit, "profile": access.profile_name},
            )
        raise ToolError("quota_exceeded", message, retry_after=refusal.retry_after)


def mask(value: Any, key: str = "") -> Any:
    """Arguments as the audit trail keeps them: values under secret-looking names masked."""
    if key and SECRET_KEY_PATTERN.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, Mapping):
        return {str(k): mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    if isinstance(value, str) and len(value) > 5000:
        return value[:5000] + "…"
    return value


def check_available(integration: Integration) -> None:
    """Refuse with a structured "unavailable, retry after" before a worker is bothered."""
    refusal = services.call_refusal(integration)
    if refusal is not None:
        raise ToolError("unavailable", refusal.message, retry_after=refusal.retry_after)


def _family(integration: Integration) -> str:
    try:
        return str(registry.get(integration.kind).family)
    except ConnectorError:
        return ""


def _load(tool: catalog.Tool, integration_id: str) -> Integration:
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        raise ToolError("not_found", f"no integration {integration_id!r}")
    family = _family(integration)
    if family != tool.family:
        raise ToolError(
            "invalid", f"{tool.name} works on {tool.family} integrations; {integration_id!r} is {integration.kind}"
        )
    return integration


def _outcome(envelope: Mapping[str, Any]) -> str:
    if envelope.get("ok"):
        return Outcome.OK
    category = (envelope.get("error") or {}).get("category")
    return {
        "invalid": Outcome.REFUSED,
        "permission": Outcome.REFUSED,
        "quota_exceeded": Outcome.REFUSED,
        "unavailable": Outcome.UNAVAILABLE,
        "timeout": Outcome.TIMEOUT,
    }.get(category or "", Outcome.ERROR)


def _complete(call_id: int | None, envelope: dict[str, Any], started: float | None = None) -> dict[str, Any]:
    """Store how the call ended (never its result, only its size) and return the envelope."""
    envelope["call_id"] = call_id
    if call_id is None:
        return envelope
    now = timezone.now()
    if started is not None:
        duration = round((time.monotonic() - started) * 1000, 2)
    else:
        call = ToolCall.objects.filter(pk=call_id).only("created_at").first()
        if call is None:
            return envelope
        duration = round((now - call.created_at).total_seconds() * 1000, 2)
    changes = _ending(envelope, now, duration)
    try:
        ToolCall.objects.filter(pk=call_id).update(**changes)
    except hub_outage.DATABASE_DOWN:  # the database went away during the call: the ending waits in the outbox
        outbox.complete(call_id, changes)
    return envelope


def _ending(envelope: Mapping[str, Any], now: Any, duration_ms: float) -> dict[str, Any]:
    """The columns that say how a call ended (never its result, only its size)."""
    result = envelope.get("result") if envelope.get("ok") else None
    error = envelope.get("error") or {}
    changes: dict[str, Any] = {
        "finished_at": now,
        "duration_ms": duration_ms,
        "outcome": _outcome(envelope),
        "error_category": str(error.get("category") or ""),
        "error_message": str(error.get("message") or "")[:2000],
    }
    if isinstance(result, Mapping):
        changes["result_size"] = len(json.dumps(result, separators=(",", ":"), default=str).encode())
        count = result.get("row_count", result.get("count"))
        changes["row_count"] = count if isinstance(count, int) else None
        changes["truncated"] = bool(result.get("truncated"))
    return changes


def call_fields(actor: str, name: str, arguments: Any, via: str) -> dict[str, Any]:
    """A ToolCall row's columns about the call itself (arguments masked)."""
    args = arguments if isinstance(arguments, Mapping) else {"(arguments)": str(arguments)[:200]}
    integration_ref = args.get("connector_id") if isinstance(args.get("connector_id"), str) else ""
    key = args.get("idempotency_key")
    return {
        "via": via,
        "actor": actor[:150],
        "tool": str(name)[:64],
        "integration_ref": (integration_ref or "")[:63],
        "arguments": mask(dict(args)),
        "idempotency_key": str(key)[:200] if isinstance(key, str) else "",
    }


def _record(principal: Principal, name: str, arguments: Any, via: str) -> ToolCall:
    return ToolCall.objects.create(
        token=principal.token,
        user=principal.user if getattr(principal.user, "pk", None) else None,
        **call_fields(principal.actor, name, arguments, via),
    )


def hub_unavailable(exc: BaseException) -> ToolError:
    """The answer when the hub's own database or Redis fails under a call: a category, never a 500."""
    what = hub_outage.what_failed(exc)
    log.warning("tool call refused: the hub's %s is unreachable (%s)", what, type(exc).__name__)
    if isinstance(exc, DatabaseError):
        close_old_connections()  # outside a request (MCP, a worker) nothing else drops a dead connection
    return ToolError(
        "unavailable",
        f"the hub's {what} is unreachable; the call did not run to its end (its audit record is kept); "
        f"retry after {wait_seconds(hub_outage.RETRY_AFTER)} s",
        retry_after=hub_outage.RETRY_AFTER,
    )


def journal_unrecorded(fields: dict[str, Any], envelope: Mapping[str, Any], started: float) -> None:
    """A call that never got its row (the database was down): the whole row goes to the outbox."""
    now = timezone.now()
    duration = round((time.monotonic() - started) * 1000, 2)
    created = now - dt.timedelta(milliseconds=duration)
    outbox.record(fields | {"created_at": created.isoformat()} | _ending(envelope, now.isoformat(), duration))


def invoke(
    name: str,
    arguments: Any,
    principal: Principal,
    *,
    via: str,
    wait: bool = True,
    timeout: float | None = None,
    inline: bool = False,
) -> dict[str, Any]:
    """Validate, authorise, audit and run one tool call; returns the envelope.

    ``inline`` runs it in this process (Python callers, tests); otherwise a worker runs it and, with
    ``wait``, this returns its envelope (or a timeout error after ``timeout`` seconds). Without
    ``wait`` the envelope is ``{"ok": null, "status": "running", "call_id"}``; poll the call.
    """
    started = time.monotonic()
    try:
        call = _record(principal, name, arguments, via)
    except hub_outage.DATABASE_DOWN as exc:
        envelope = hub_unavailable(exc).envelope()
        fields = call_fields(principal.actor, name, arguments, via)
        fields["token_id"] = principal.token.pk if principal.token is not None else None
        fields["user_id"] = getattr(principal.user, "pk", None)
        journal_unrecorded(fields, envelope, started)
        return envelope
    try:
        outbox.replay_soon()  # the database answers again: calls it missed get their rows
    except Exception:  # never the call's problem; the journal stays for the next try
        log.exception("tool call outbox not replayed")
    try:
        return _invoke_recorded(
            call, name, arguments, principal, wait=wait, timeout=timeout, inline=inline, started=started
        )
    except hub_outage.OUTAGES as exc:
        return _complete(call.pk, hub_unavailable(exc).envelope(), started)


def _invoke_recorded(
    call: ToolCall,
    name: str,
    arguments: Any,
    principal: Principal,
    *,
    wait: bool,
    timeout: float | None,
    inline: bool,
    started: float,
) -> dict[str, Any]:
    try:
        tool = catalog.get(name)
        if tool is None:
            raise ToolError("not_found", f"no tool named {name!r}; the catalog (GET /api/tools/) lists them")
        principal.check_tool(tool)
        problems = catalog.input_errors(tool, arguments)
        if problems:
            raise ToolError("invalid", "invalid arguments: " + "; ".join(problems))
        if tool.family == "agent":  # about the caller itself: answered here, no integration, no quota
            if principal.token is None and not principal.trusted and not getattr(principal.user, "is_staff", False):
                raise ToolError("permission", "tool calls need an agent token or a staff account")
            result = tool.function()(principal.access())
            return _complete(call.pk, {"ok": True, "result": result}, started)
        integration_id = arguments["connector_id"]
        may_write = principal.check(tool, integration_id)
        check_available(_load(tool, integration_id))
        principal.take_quota(tool, integration_id, arguments, may_write)
    except ToolError as exc:
        return _complete(call.pk, exc.envelope(), started)

    if inline:
        return execute(call.pk, name, dict(arguments), may_write)

    limit = conf.timeout_seconds()
    try:
        async_result = run_tool.apply_async(
            args=(call.pk, name, dict(arguments), may_write),
            soft_time_limit=limit,
            time_limit=limit + 5,
            # A call nobody picked up in time is not run later: its caller has given up on it.
            expires=limit,
        )
    except Exception as exc:  # the broker is down
        log.warning("tool call %s not dispatched: %s", call.pk, type(exc).__name__)
        return _complete(
            call.pk, ToolError("unavailable", "the task queue is unreachable", retry_after=5).envelope(), started
        )
    ToolCall.objects.filter(pk=call.pk).update(task_id=async_result.id)
    if not wait:
        return {"ok": None, "status": "running", "call_id": call.pk}
    try:
        envelope = async_result.get(timeout=timeout or (limit + 10), propagate=False, interval=0.05)
    except Exception:  # celery.exceptions.TimeoutError, or the result store is unreachable
        envelope = None
    if not isinstance(envelope, dict):
        return _complete(
            call.pk,
            ToolError(
                "timeout",
                f"no result within {timeout or limit + 10:g} s; the call may still finish "
                f"(see its record, call {call.pk})",
            ).envelope(),
            started,
        )
    # The worker completed the record; the envelope it returned is final.
    return envelope


def execute(call_id: int | None, name: str, arguments: dict[str, Any], may_write: bool) -> dict[str, Any]:
    """Run the implementation (in a worker, or inline) and complete the call's record."""
    started = time.monotonic()
    try:
        return _execute(call_id, name, arguments, may_write)
    except hub_outage.OUTAGES as exc:  # the hub's own stores, not the integration's
        return _complete(call_id, hub_unavailable(exc).envelope(), started)


def _execute(call_id: int | None, name: str, arguments: dict[str, Any], may_write: bool) -> dict[str, Any]:
    tool = catalog.get(name)
    call = ToolCall.objects.filter(pk=call_id).select_related("token__profile").first() if call_id is not None else None
    actor = call.actor if call is not None else "python"
    access: AgentAccess | None = None
    try:
        if tool is None:
            raise ToolError("not_found", f"no tool named {name!r}")
        integration = _load(tool, arguments["connector_id"])
        check_available(integration)
        # The caller's profile, rebuilt from rows where the call runs (a worker gets only the call's id).
        access = access_for_token(call.token) if call is not None and call.token is not None else None
        ctx = ToolContext(
            integration=integration,
            may_write=may_write,
            actor=actor,
            call_id=call_id,
            access=access,
            grant=access.grant_for(integration.pk) if access is not None else None,
        )
        result = tool.function()(ctx, **arguments)
        envelope: dict[str, Any] = {"ok": True, "result": result}
        if access is not None and access.quota_key and isinstance(result, Mapping):
            rows = result.get("row_count", result.get("count"))
            if isinstance(rows, int):
                quotas.add_rows(access.quota_key, access.quotas, rows)
    except ToolError as exc:
        envelope = exc.envelope()
    except ConnectorError as exc:
        envelope = ToolError.from_connector(exc).envelope()
    except Exception as exc:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, SoftTimeLimitExceeded):
            envelope = ToolError("timeout", f"the call ran longer than {conf.timeout_seconds():g} s").envelope()
        else:
            # A bug: the trace goes to the log, the caller gets no internals.
            log.exception("tool %s failed (call %s)", name, call_id)
            envelope = ToolError("unknown", f"internal error in {name} ({type(exc).__name__})").envelope()
    return _complete(call_id, envelope)


# Acknowledged on receipt, unlike the hub's other tasks: a tool call is interactive, its caller
# retries it (HRIS writes with the same idempotency key, which makes that safe), and a query that
# killed its worker must not be handed to the next one. Registered with the worker through
# CELERY_IMPORTS (config/settings.py); the time limits come with each call (``invoke``).
@hub_task("integrations.tools.run", acks_late=False, reject_on_worker_lost=False, max_retries=0)
def run_tool(self: Any, call_id: int, name: str, arguments: dict[str, Any], may_write: bool) -> dict[str, Any]:
    return execute(call_id, name, arguments, may_write)


def call_local(name: str, **arguments: Any) -> dict[str, Any]:
    """The Python entry points (``integrations.tools.query_database`` ...): in this process, audited."""
    arguments = {k: v for k, v in arguments.items() if v is not None}
    return invoke(name, arguments, Principal.local(), via=Via.PYTHON, inline=True)
