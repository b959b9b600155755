"""REST over the mirror: the change feed and outbound webhook subscriptions.

GET              /api/changes?cursor=&integration=&limit=   changes after cursor (stable, resumable)
GET/POST         /api/subscriptions                         POST {"integration", "url"} -> the secret, once
GET/DELETE       /api/subscriptions/{id}
GET              /api/subscriptions/{id}/deliveries         the delivery log, newest first
POST             /api/subscriptions/{id}/deliveries/{delivery id}/replay
GET              /api/integrations/{id}/mirror              the mirror's state (counts, full sync, webhooks)
POST             /api/integrations/{id}/mirror/resync       a full sync in a worker

Every route sees only the integrations the caller may see (Integration.objects.visible_to).
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from connectors.errors import ConnectorError
from integrations.models import Integration
from integrations.sync import services
from integrations.sync.models import OutboundDelivery, Subscription
from integrations.target_policy import target_policy


def _visible(request: Request) -> Any:
    return Integration.objects.visible_to(request.user)


@extend_schema(
    summary="Changes the mirrors saw, in order (resume with next_cursor)",
    parameters=[
        OpenApiParameter("cursor", int, description="The next_cursor of the previous page; 0 from the start."),
        OpenApiParameter("integration", str, description="Only this integration's changes."),
        OpenApiParameter("limit", int, description=f"At most this many (1-{services.FEED_PAGE})."),
    ],
    responses={200: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def changes(request: Request) -> Response:
    try:
        cursor = int(request.query_params.get("cursor") or 0)
        limit = min(max(int(request.query_params.get("limit") or services.FEED_PAGE), 1), services.FEED_PAGE)
    except ValueError:
        raise exceptions.ValidationError({"cursor": ["cursor and limit are whole numbers"]}) from None
    integrations = _visible(request)
    if request.query_params.get("integration"):
        integrations = integrations.filter(pk=request.query_params["integration"])
    return Response(services.feed(integrations, cursor, limit))


@extend_schema(
    summary="The mirror of an integration: counts, full sync, webhooks", responses={200: OpenApiTypes.OBJECT}
)
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated])
def mirror_status(request: Request, integration_id: str) -> Response:
    integration = get_object_or_404(_visible(request), pk=integration_id)
    return Response(services.status(integration))


@extend_schema(
    summary="Start a full sync of the mirror in a worker", request=None, responses={202: OpenApiTypes.OBJECT}
)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def resync(request: Request, integration_id: str) -> Response:
    integration = get_object_or_404(_visible(request), pk=integration_id, kind="bamboohr")
    task = current_app.signature("sync.full_sync", args=[integration.id]).apply_async()
    return Response({"task_id": task.id, "status": "queued"}, status=status.HTTP_202_ACCEPTED)


class SubscriptionSerializer(serializers.ModelSerializer):
    integration = serializers.CharField(max_length=63)

    class Meta:
        model = Subscription
        fields = ["id", "integration", "url", "active", "created_at", "failing_since"]
        read_only_fields = ["id", "active", "created_at", "failing_since"]

    def validate_integration(self, value: str) -> Integration:
        integration = _visible(self.context["request"]).filter(pk=value).first()
        if integration is None:
            raise serializers.ValidationError(f"no integration {value!r} that you can see")
        return integration

    def validate_url(self, value: str) -> str:
        try:  # the network policy applies: https, or http to loopback only where loopback is allowed
            target_policy().check_url(value, what="url", https_only=True)
        except ConnectorError as exc:
            raise serializers.ValidationError(exc.message) from None
        return value

    def to_representation(self, instance: Subscription) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["integration"] = instance.integration_id
        return data


class DeliverySerializer(serializers.ModelSerializer):
    change = serializers.SerializerMethodField()

    class Meta:
        model = OutboundDelivery
        fields = ["id", "change", "state", "attempts", "next_attempt_at", "last_status", "last_error", "delivered_at"]

    def get_change(self, delivery: OutboundDelivery) -> dict[str, object]:
        return delivery.change.as_dict()


class SubscriptionViewSet(viewsets.ModelViewSet):
    serializer_class = SubscriptionSerializer
    permission_classes = [permissions.IsAuthenticated]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return Subscription.objects.filter(integration__in=_visible(self.request)).order_by("id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = serializer.save(owner=request.user, secret=services.new_secret())
        # The signing secret is shown here only; the subscriber keeps it to verify deliveries.
        body = {**self.get_serializer(subscription).data, "secret": subscription.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        rows = OutboundDelivery.objects.filter(subscription=subscription).select_related("change").order_by("-id")
        return Response(DeliverySerializer(rows[:200], many=True).data)

    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>\d+)/replay")
    def replay(self, request: Request, pk: str | None = None, delivery_id: str = "") -> Response:
        subscription = self.get_object()
        delivery = get_object_or_404(OutboundDelivery, pk=int(delivery_id), subscription=subscription)
        services.replay(delivery.pk)
        current_app.signature("sync.deliver_pending").apply_async()
        return Response({"id": delivery.pk, "state": "pending"}, status=status.HTTP_202_ACCEPTED)
