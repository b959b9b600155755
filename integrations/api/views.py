"""REST endpoints: thin adapters over ``integrations.services`` and the models.

Work that talks to an outside system (connect, disconnect, test) runs in a Celery worker: the API
answers 202 with an operation to follow at /api/operations/{id}, or, with ``?wait=<seconds>``, the
finished result (200) when the worker is done within that time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import BinaryField, ExpressionWrapper, F
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from redis.exceptions import RedisError
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes, schema
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from connectors import registry
from connectors.errors import Category, ConfigError, ConnectorError
from integrations import services
from integrations.api.filters import EventFilter, IntegrationFilter
from integrations.api.parsers import JSONParser
from integrations.api.permissions import IntegrationPermission
from integrations.api.responses import (
    ConnectorTypeSerializer,
    EventSerializer,
    HealthSerializer,
    MetricsSerializer,
    OperationSerializer,
    TimelineSerializer,
)
from integrations.api.serializers import (
    CREDENTIALS_TOKEN,
    IntegrationDetailSerializer,
    IntegrationSerializer,
    IntegrationUpdateSerializer,
)
from integrations.models import Integration, IntegrationEvent

MAX_WAIT_SECONDS = 30.0
FINISHED_STATES = frozenset({"succeeded", "failed"})

WAIT_PARAMETER = OpenApiParameter(
    "wait",
    {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
    OpenApiParameter.QUERY,
    description=f"Seconds (0-{MAX_WAIT_SECONDS:g}) to wait for the worker; the result comes inline (200) if it "
    "finishes in time, else 202 as without it.",
)


class QueueUnavailable(APIException):
    status_code = 503
    default_detail = "The task queue (Redis) is unreachable; try again shortly."
    default_code = "unavailable"


UNAVAILABLE = OpenApiResponse(
    {"type": "object", "properties": {"detail": {"type": "string"}}},
    description="Redis (the task queue and operation store) is unreachable.",
)
LOCATION_HEADER = OpenApiParameter(
    "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[202], description="The operation to follow."
)
OPERATION_RESPONSES = {
    200: OpenApiResponse(OperationSerializer, description="Finished within ?wait= (state succeeded or failed)."),
    202: OpenApiResponse(OperationSerializer, description="Accepted: follow the operation at its url / Location."),
    503: UNAVAILABLE,
}


class HubViewMixin:
    """What every view here shares.

    No endpoint takes a query parameter twice: ``?status=a&status=b`` is a 400, not "the last one". A NUL
    character, which PostgreSQL refuses in text, is a 404 in the path and a 400 in the query. Redis down
    (operations, metrics) is a 503 that says so, not a 500.
    """

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RedisError):
            exc = QueueUnavailable()
        elif isinstance(exc, ConnectorError) and exc.category == Category.UNAVAILABLE:
            exc = QueueUnavailable(exc.message)
        return super().handle_exception(exc)  # type: ignore[misc]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]  # authentication and permissions first
        if any("\x00" in str(value) for value in kwargs.values()):
            raise NotFound()
        errors: dict[str, list[str]] = {}
        for name, values in request.query_params.lists():
            if len(values) > 1:
                errors[name] = ["Give this parameter once."]
            elif "\x00" in name or "\x00" in values[0]:
                errors[name.replace("\x00", "")] = ["Null characters are not allowed."]
        if errors:
            raise ValidationError(errors)


def _wait_seconds(request: Request) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        raise ValidationError(
            {"wait": [f"A number of seconds between 0 and {MAX_WAIT_SECONDS:g} is required."]}
        ) from None
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # also refuses nan and inf
        raise ValidationError({"wait": [f"Must be between 0 and {MAX_WAIT_SECONDS:g} seconds."]})
    return seconds


def _operation_body(request: Request, state: dict[str, Any]) -> dict[str, Any]:
    url = request.build_absolute_uri(reverse("api:operation-detail", args=[state["id"]]))
    return {
        "id": state["id"],
        "operation": state.get("operation"),
        "integration": state.get("integration"),
        "state": state["state"],
        "result": state.get("result"),
        "url": url,
    }


def _service_errors(exc: ConfigError) -> ValidationError:
    """A refusal from the service layer (e.g. connecting a disabled integration) as a 400 with fields."""
    return ValidationError(exc.errors or {"detail": exc.message})


def operation_response(request: Request, operation_id: str) -> Response:
    wait = _wait_seconds(request)
    state = services.wait_for_operation(operation_id, wait) if wait else services.operation_status(operation_id)
    body = _operation_body(request, state)
    if state["state"] in FINISHED_STATES:
        return Response(body, status=status.HTTP_200_OK)
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


@extend_schema_view(
    list=extend_schema(summary="List the integrations visible to you"),
    create=extend_schema(summary="Create an integration (you become its owner)"),
    retrieve=extend_schema(summary="One integration"),
    update=extend_schema(summary="Replace an integration's settings (owner or staff)", responses=IntegrationSerializer),
    partial_update=extend_schema(
        summary="Change some of an integration's settings (owner or staff)", responses=IntegrationSerializer
    ),
    destroy=extend_schema(summary="Disconnect and delete an integration; its event history is kept (owner or staff)"),
)
class IntegrationViewSet(HubViewMixin, viewsets.ModelViewSet):
    serializer_class = IntegrationSerializer
    parser_classes = [JSONParser]  # config and credentials are nested objects: forms cannot carry them
    permission_classes = [IsAuthenticated, IntegrationPermission]
    filterset_class = IntegrationFilter
    # The class default (the DEFAULT_FILTER_BACKENDS classes); the stubs declare it per instance of a generic class.
    filter_backends = [*viewsets.ModelViewSet.filter_backends, filters.SearchFilter]  # type: ignore[misc]
    search_fields = ["id", "name"]
    ordering_fields = ["id", "name", "kind", "status", "enabled", "created_at", "updated_at", "last_checked_at"]
    ordering = ["id"]
    lookup_value_regex = "[^/.]+"

    def get_serializer_class(self) -> type[IntegrationSerializer]:
        if self.action in ("update", "partial_update"):
            return IntegrationUpdateSerializer
        if self.action in ("create", "retrieve"):
            return IntegrationDetailSerializer
        return IntegrationSerializer

    def get_queryset(self) -> Any:
        # Group names come in one query per page from IntegrationListSerializer (cheaper than prefetch_related).
        # The owner's name as a column, not 1,000 User objects.
        queryset = Integration.objects.visible_to(self.request.user).annotate(owner_username=F("owner__username"))
        if self.action == "list":
            # The ciphertext as bytes: serializers.secret_flags decrypts each distinct one once per process.
            queryset = queryset.defer("credentials").annotate(
                **{CREDENTIALS_TOKEN: ExpressionWrapper(F("credentials"), output_field=BinaryField())}
            )
        return queryset

    def perform_destroy(self, instance: Integration) -> None:
        try:
            services.delete_integration(instance.id, actor=self.request.user)
        except Integration.DoesNotExist:  # deleted by someone else meanwhile
            raise NotFound() from None

    def _start(self, request: Request, request_operation: Callable[..., str]) -> Response:
        _wait_seconds(request)  # refuse a bad ?wait= before anything is enqueued
        integration = self.get_object()
        try:
            operation_id = request_operation(integration.id, actor=request.user)
            return operation_response(request, operation_id)
        except ConfigError as exc:
            raise _service_errors(exc) from None
        except Integration.DoesNotExist:
            raise NotFound() from None

    @extend_schema(
        summary="Connect (runs in a worker)",
        request=None,
        parameters=[WAIT_PARAMETER, LOCATION_HEADER],
        responses=OPERATION_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def connect(self, request: Request, pk: str | None = None) -> Response:
        return self._start(request, services.request_connect)

    @extend_schema(
        summary="Disconnect (runs in a worker)",
        request=None,
        parameters=[WAIT_PARAMETER, LOCATION_HEADER],
        responses=OPERATION_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def disconnect(self, request: Request, pk: str | None = None) -> Response:
        return self._start(request, services.request_disconnect)

    @extend_schema(
        summary="Test the connection, with latency (runs in a worker)",
        description="POST only: a test reaches the outside system and records an event, so a GET (a link, "
        "a prefetch, a crawler) must not start one; GET answers 405. The last results are the integration's "
        "events (?type=test).",
        request=None,
        parameters=[WAIT_PARAMETER, LOCATION_HEADER],
        responses=OPERATION_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        return self._start(request, services.request_test)

    @extend_schema(
        summary="Call metrics (shared by every worker)", responses={200: MetricsSerializer, 503: UNAVAILABLE}
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        integration = self.get_object()
        return Response(services.get_metrics(integration.id))

    @extend_schema(
        summary="State timeline and uptime over the last hour, 24 hours or 7 days (from the status history)",
        parameters=[
            OpenApiParameter(
                "range",
                {"type": "string", "enum": list(services.TIMELINE_RANGES), "default": "24h"},
                OpenApiParameter.QUERY,
            )
        ],
        responses={200: TimelineSerializer},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        range_name = request.query_params.get("range", "24h")
        if range_name not in services.TIMELINE_RANGES:
            raise ValidationError({"range": [f"Expected one of: {', '.join(services.TIMELINE_RANGES)}."]})
        return Response(services.timeline(self.get_object(), range_name))


class IntegrationEventViewSet(HubViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Events of one integration, newest first; kept after the integration is deleted (see the admin)."""

    serializer_class = EventSerializer
    filterset_class = EventFilter
    ordering_fields = ["created_at", "type"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return IntegrationEvent.objects.none()
        integration = get_object_or_404(
            Integration.objects.visible_to(self.request.user), pk=self.kwargs["integration_id"]
        )
        return IntegrationEvent.objects.filter(integration=integration)

    @extend_schema(
        summary="Events of an integration (paginated, filterable)",
        parameters=[OpenApiParameter("integration_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class ConnectorTypeViewSet(HubViewMixin, viewsets.ViewSet):
    """Every connector kind with its config JSON Schema and credential fields (for forms and clients)."""

    lookup_field = "kind"
    lookup_value_regex = "[^/.]+"
    serializer_class = ConnectorTypeSerializer

    @extend_schema(summary="Every connector kind", responses=ConnectorTypeSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response([registry.describe(kind) for kind in registry.kinds()])

    @extend_schema(
        summary="One connector kind",
        responses=ConnectorTypeSerializer,
        parameters=[OpenApiParameter("kind", {"type": "string", "enum": registry.kinds()}, OpenApiParameter.PATH)],
    )
    def retrieve(self, request: Request, kind: str | None = None) -> Response:
        try:
            return Response(registry.describe(kind or ""))
        except ConfigError:
            raise NotFound(f"Unknown kind {kind!r}.") from None


class HealthView(HubViewMixin, APIView):
    """The seed's health summary over the integrations visible to you."""

    @extend_schema(summary="Health summary", responses=HealthSerializer)
    def get(self, request: Request) -> Response:
        return Response(services.health_summary(request.user))


class OperationView(HubViewMixin, APIView):
    """Where a 202 points: the state of a connect / disconnect / test operation."""

    @extend_schema(
        summary="Follow an operation (?wait= long-polls until it finishes)",
        responses={
            200: OpenApiResponse(OperationSerializer, description="Finished (state succeeded or failed)."),
            202: OpenApiResponse(OperationSerializer, description="Still pending or running."),
            503: UNAVAILABLE,
        },
        parameters=[OpenApiParameter("operation_id", OpenApiTypes.UUID, OpenApiParameter.PATH), WAIT_PARAMETER],
    )
    def get(self, request: Request, operation_id: str) -> Response:
        wait = _wait_seconds(request)
        try:
            state = services.operation_status(operation_id)
        except services.OperationNotFound:
            raise NotFound("No such operation.") from None
        # Operations follow the visibility of their integration (staff see every one).
        if (
            not request.user.is_staff
            and not Integration.objects.visible_to(request.user).filter(pk=state.get("integration")).exists()
        ):
            raise NotFound("No such operation.")
        if wait and state["state"] not in FINISHED_STATES:
            state = services.wait_for_operation(operation_id, wait)
        # As on the endpoints that start one: 200 once finished, 202 while the worker is still on it.
        finished = state["state"] in FINISHED_STATES
        return Response(_operation_body(request, state), status=200 if finished else 202)


@api_view(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@permission_classes([AllowAny])
@authentication_classes([])
@schema(None)
def not_found(request: Request, path: str = "") -> Response:
    """Unknown paths under the API's prefixes answer JSON like the rest of the API, not an HTML page."""
    raise NotFound()
