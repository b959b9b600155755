"""REST: the catalog, invocation, and the audit trail of tool calls.

  GET  /api/tools/                  the catalog (JSON Schemas, annotations)
  POST /api/tools/{name}/invoke     the tool's arguments as the JSON body; waits for the result
                                    (``?wait=false``: 202 and the call id; ``?timeout=S``);
                                    an ``Idempotency-Key`` header fills ``idempotency_key``
  GET  /api/tools/calls/            the audit trail (``?integration=&tool=&outcome=&limit=``)
  GET  /api/tools/calls/{id}        one call, with its result while the result store keeps it

Callers: agent tokens (``Authorization: Bearer hubat_...``), scoped to integrations and to read or
write; staff users by session or API token (``Authorization: Token ...``). The body of an invocation is always the envelope; the
status says who should act: 200 the call ran or the outside system is unavailable (see ``ok``,
``error.retry_after`` and the ``Retry-After`` header), 4xx the call itself must change.
"""

from __future__ import annotations

import time
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import APITokenAuthentication
from accounts.throttle import FailureThrottledAuthentication
from connectors.errors import wait_seconds
from integrations import hub_outage
from integrations.tools import catalog, conf
from integrations.tools.invocation import Principal, call_fields, hub_unavailable, invoke, journal_unrecorded
from integrations.tools.models import TOKEN_PREFIX, AgentToken, ToolCall, Via, hash_token

# Caller mistakes get a 4xx; everything else (ran, failed outside, unavailable) is a 200 envelope.
_CLIENT_ERROR_STATUS = {
    "invalid": 400,
    "permission": 403,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "quota_exceeded": 429,
}


class AgentUser:
    """What ``request.user`` is for an agent token: authenticated, never staff."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: AgentToken) -> None:
        self.token = token
        self.username = f"agent-token:{token.name}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


class _AgentTokenCheck(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AgentUser, AgentToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        token = AgentToken.authenticate(parts[1])
        if token is None:
            raise exceptions.AuthenticationFailed("invalid, revoked or expired agent token")
        return AgentUser(token), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="tools"'


class AgentTokenAuthentication(FailureThrottledAuthentication, _AgentTokenCheck):
    """``Authorization: Bearer hubat_...``; an address with too many failed tokens gets 429."""

    keyword = "Bearer"


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """Documents agent tokens in the OpenAPI schema (drf-spectacular finds it by subclassing)."""

    target_class = "integrations.tools.api.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "http", "scheme": "bearer", "description": "An agent token (manage.py create_agent_token)."}


AUTHENTICATION = [AgentTokenAuthentication, APITokenAuthentication, SessionAuthentication]


class ToolsPermission(BasePermission):
    message = "Tools need an agent token (Authorization: Bearer ...) or a staff account."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, AgentToken):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def principal(request: Request) -> Principal:
    if isinstance(request.auth, AgentToken):
        return Principal.for_token(request.auth)
    return Principal.for_user(request.user)


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise exceptions.ValidationError({"wait": ["must be true or false"]})


def envelope_response(envelope: dict[str, Any]) -> Response:
    if envelope.get("ok") is None:
        return Response(envelope, status=202)
    error = envelope.get("error") or {}
    status = 200 if envelope.get("ok") else _CLIENT_ERROR_STATUS.get(error.get("category") or "", 200)
    response = Response(envelope, status=status)
    if error.get("retry_after") is not None:  # every refusal with a wait says it in the header, at least 1 s
        response["Retry-After"] = str(wait_seconds(float(error["retry_after"])))
    return response


ENVELOPE = OpenApiResponse(OpenApiTypes.OBJECT, description="The envelope: {ok, result} or {ok: false, error}.")


class ToolCatalogView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [ToolsPermission]

    @extend_schema(
        summary="The agent tool catalog",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="{tools: [...]} with JSON Schemas.")},
    )
    def get(self, request: Request) -> Response:
        access = principal(request).access()  # an agent sees only its profile's tools
        return Response(
            {"tools": [t.describe() for t in catalog.TOOLS if access is None or access.may_use_tool(t.name)]}
        )


class ToolInvokeView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [ToolsPermission]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.started = time.monotonic()
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        if not isinstance(exc, hub_outage.DATABASE_DOWN):
            return super().handle_exception(exc)
        # The database went before the call was recorded (e.g. while its token was looked up): the
        # answer says so, and the call's row waits in the outbox, its token kept as a hash.
        envelope = hub_unavailable(exc).envelope()
        fields = call_fields("token:unverified", str(self.kwargs.get("name", "")), _arguments(self.request), Via.REST)
        parts = self.request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1].startswith(TOKEN_PREFIX):
            fields["token_hash"] = hash_token(parts[1])
        elif len(parts) == 2:
            fields["actor"] = f"{parts[0].lower()}:unverified"
        journal_unrecorded(fields, envelope, getattr(self, "started", time.monotonic()))
        answer = hub_outage.response(exc)
        answer.data["call_id"] = None  # the envelope's shape: no record yet (it waits in the outbox)
        return answer

    @extend_schema(
        summary="Invoke a tool",
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("wait", OpenApiTypes.BOOL, description="Wait for the result (default true)."),
            OpenApiParameter("timeout", OpenApiTypes.NUMBER, description="Seconds to wait at most."),
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                description="Fills idempotency_key for the write tools.",
            ),
        ],
        responses={
            200: ENVELOPE,
            202: ENVELOPE,
            400: ENVELOPE,
            403: ENVELOPE,
            404: ENVELOPE,
            409: ENVELOPE,
            429: ENVELOPE,
        },
    )
    def post(self, request: Request, name: str) -> Response:
        arguments = request.data
        if not isinstance(arguments, dict):
            raise exceptions.ValidationError({"detail": "the body must be a JSON object of the tool's arguments"})
        arguments = dict(arguments)
        wait = _bool(request.query_params.get("wait"), True)
        timeout: float | None = None
        if request.query_params.get("timeout") is not None:
            try:
                timeout = float(request.query_params["timeout"])
            except ValueError:
                raise exceptions.ValidationError({"timeout": ["must be a number of seconds"]}) from None
            if not 0 < timeout <= conf.timeout_seconds() + 30:
                raise exceptions.ValidationError(
                    {"timeout": [f"must be between 0 and {conf.timeout_seconds() + 30:g} seconds"]}
                )
        key = request.headers.get("Idempotency-Key")
        tool = catalog.get(name)
        if key and tool is not None and "idempotency_key" in tool.input_schema["properties"]:
            arguments.setdefault("idempotency_key", key)
        envelope = invoke(name, arguments, principal(request), via=Via.REST, wait=wait, timeout=timeout)
        return envelope_response(envelope)


def _arguments(request: Request) -> Any:
    try:
        return request.data
    except Exception:  # an unparsable body: the call is kept without its arguments
        return {}


def _calls_for(request: Request) -> Any:
    calls = ToolCall.objects.select_related(None)
    if isinstance(request.auth, AgentToken):
        calls = calls.filter(token=request.auth)  # a token sees its own calls only
    return calls


class ToolCallListView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [ToolsPermission]

    @extend_schema(
        operation_id="tools_calls_list",
        summary="The audit trail of tool calls (newest first)",
        parameters=[
            OpenApiParameter("integration", OpenApiTypes.STR),
            OpenApiParameter("tool", OpenApiTypes.STR),
            OpenApiParameter("outcome", OpenApiTypes.STR),
            OpenApiParameter("limit", OpenApiTypes.INT, description="At most 500 (default 50)."),
        ],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="{results: [...]}")},
    )
    def get(self, request: Request) -> Response:
        calls = _calls_for(request)
        for param, lookup in (("integration", "integration_ref"), ("tool", "tool"), ("outcome", "outcome")):
            value = request.query_params.get(param)
            if value:
                calls = calls.filter(**{lookup: value})
        try:
            limit = int(request.query_params.get("limit", 50))
        except ValueError:
            raise exceptions.ValidationError({"limit": ["must be a whole number"]}) from None
        if not 1 <= limit <= 500:
            raise exceptions.ValidationError({"limit": ["must be between 1 and 500"]})
        return Response({"results": [call.as_dict() for call in calls[:limit]]})


class ToolCallDetailView(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [ToolsPermission]

    @extend_schema(
        operation_id="tools_calls_retrieve",
        summary="One tool call (and its envelope while the result store keeps it)",
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT)},
    )
    def get(self, request: Request, pk: int) -> Response:
        call = _calls_for(request).filter(pk=pk).first()
        if call is None:
            raise exceptions.NotFound("no such tool call")
        data = call.as_dict()
        data["envelope"] = None
        if call.task_id and call.finished_at is not None:
            from celery.result import AsyncResult

            try:
                result = AsyncResult(call.task_id)
                if result.ready() and isinstance(result.result, dict):
                    data["envelope"] = result.result
            except Exception:  # the result store is down or the result expired: the record remains
                pass
        return Response(data)
