"""Query filters for the list endpoints (django-filter); a bad value is a 400 with the field named."""

from __future__ import annotations

import django_filters

from connectors import registry
from integrations.models import EventType, Integration, IntegrationEvent, Status


class IntegrationFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=registry.choices())
    status = django_filters.ChoiceFilter(choices=Status.choices)
    enabled = django_filters.BooleanFilter()

    class Meta:
        model = Integration
        fields = ["kind", "status", "enabled"]


class EventFilter(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=EventType.choices)
    ok = django_filters.BooleanFilter()
    since = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Only events at or after this ISO-8601 time."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Only events before this ISO-8601 time."
    )

    class Meta:
        model = IntegrationEvent
        fields = ["type", "ok", "since", "until"]
