"""Read-only serializers of what the API answers besides integrations: events, operations, connector
types, metrics and the health summary (they shape responses and the OpenAPI schema).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from integrations.models import EventType, IntegrationEvent


class EventSerializer(serializers.ModelSerializer):
    type = serializers.ChoiceField(choices=EventType.choices)

    class Meta:
        model = IntegrationEvent
        fields = ["id", "integration_ref", "type", "created_at", "ok", "latency_ms", "actor", "message", "detail"]
        read_only_fields = fields


class OperationSerializer(serializers.Serializer):
    id = serializers.CharField()
    operation = serializers.ChoiceField(choices=["connect", "disconnect", "test"], allow_null=True)
    integration = serializers.CharField(allow_null=True, help_text="The integration's id.")
    state = serializers.ChoiceField(choices=["pending", "running", "succeeded", "failed"])
    result = serializers.JSONField(allow_null=True, help_text="What the worker reported, once finished.")
    url = serializers.URLField(help_text="Where to follow the operation (also sent as the Location header).")


class CredentialFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    # DRF's metaclass moves declared fields into _declared_fields: Field.label (a str) is not overwritten.
    label = serializers.CharField()  # type: ignore[assignment]
    secret = serializers.BooleanField()
    required_for = serializers.ListField(child=serializers.CharField())
    help = serializers.CharField(allow_blank=True)


class ConnectorTypeSerializer(serializers.Serializer):
    kind = serializers.CharField()
    # DRF's metaclass moves declared fields into _declared_fields: Field.label (a str) is not overwritten.
    label = serializers.CharField()  # type: ignore[assignment]
    family = serializers.CharField()
    auth_types = serializers.ListField(child=serializers.CharField())
    config_schema = serializers.JSONField(help_text="JSON Schema of the kind's config.")
    credential_fields = CredentialFieldSerializer(many=True)


class MetricsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    avg_latency_ms = serializers.FloatField(allow_null=True)
    p95_latency_ms = serializers.FloatField(allow_null=True)
    uptime_seconds = serializers.FloatField(allow_null=True)
    last_error = serializers.CharField(allow_null=True, allow_blank=True)


class HealthIntegrationSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    enabled = serializers.BooleanField()
    last_checked_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    stale = serializers.BooleanField(
        help_text="Watched, but its last check is older than three intervals: checks are not running (beat or workers)."
    )


class HealthSerializer(serializers.Serializer):
    """``services.health_summary`` over the integrations visible to the caller."""

    overall = serializers.ChoiceField(choices=["healthy", "degraded", "unhealthy", "empty"])
    total = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Integrations per status.")
    stale = serializers.IntegerField(help_text="How many integrations are stale (see integrations[].stale).")
    integrations = HealthIntegrationSerializer(many=True)


def _serializer(name: str, fields: dict[str, Any]) -> type[serializers.Serializer]:
    """A serializer whose field names are not Python names ("24h", "from"): DRF's metaclass collects them."""
    return type(name, (serializers.Serializer,), fields)


_STATES = ["up", "down", "unmonitored"]
UptimeSerializer = _serializer(
    "UptimeSerializer",
    {
        window: serializers.FloatField(
            allow_null=True,
            help_text=f"Share (0..1) of the monitored time in the last {window} the integration was up "
            "(connected or degraded); null when it was not monitored (disconnected) at all.",
        )
        for window in ("24h", "7d", "30d")
    },
)


class AvailabilitySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=_STATES)
    uptime = UptimeSerializer()
    down_since = serializers.DateTimeField(allow_null=True, help_text="When the current outage began; null if up.")
    last_success = serializers.DateTimeField(
        allow_null=True, help_text="The latest successful health check, test or connect."
    )


TimelineSegmentSerializer = _serializer(
    "TimelineSegmentSerializer",
    {
        "status": serializers.CharField(),
        "state": serializers.ChoiceField(choices=_STATES),
        "from": serializers.DateTimeField(),
        "to": serializers.DateTimeField(),
        "seconds": serializers.FloatField(),
    },
)
TimelineSerializer = _serializer(
    "TimelineSerializer",
    {
        "range": serializers.ChoiceField(choices=["1h", "24h", "7d"]),
        "from": serializers.DateTimeField(),
        "to": serializers.DateTimeField(),
        "uptime": serializers.FloatField(allow_null=True, help_text="Share of the monitored time up in the range."),
        "segments": TimelineSegmentSerializer(many=True),
    },
)
