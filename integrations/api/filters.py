"""Query filters for the list endpoints (django-filter); a bad value is a 400 with the field named."""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms

from connectors import registry
from integrations.models import EventType, Integration, IntegrationEvent, Status


class StrictBooleanField(forms.Field):
    """``true`` or ``false``; django-filter's default reads anything else (``?enabled=maybe``) as "no filter"."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        lowered = str(value).lower()
        if lowered not in ("true", "false"):
            raise forms.ValidationError("Use true or false.")
        return lowered == "true"


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 in any offset Python accepts (up to +-23:59), compared in UTC: PostgreSQL refuses offsets
    beyond +-15:59 when a datetime reaches it with its own offset."""

    def filter(self, qs: Any, value: Any) -> Any:
        if value is not None:
            try:
                value = value.astimezone(dt.UTC)
            except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the first UTC datetime
                value = (
                    dt.datetime.min.replace(tzinfo=dt.UTC)
                    if value.year == 1
                    else dt.datetime.max.replace(tzinfo=dt.UTC)
                )
        return super().filter(qs, value)


class StrictFilterSet(django_filters.FilterSet):
    """django-filter reads ``?status=`` as "no filter"; here a blank value is an error the client sees."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name in self.filters:
            if name in self.data and self.data.get(name) == "":
                self.form.add_error(name, "This value may not be blank; leave the parameter out instead.")
                valid = False
        return valid


class IntegrationFilter(StrictFilterSet):
    kind = django_filters.ChoiceFilter(choices=registry.choices())
    status = django_filters.ChoiceFilter(choices=Status.choices)
    enabled = StrictBooleanFilter()

    class Meta:
        model = Integration
        fields = ["kind", "status", "enabled"]


class EventFilter(StrictFilterSet):
    type = django_filters.ChoiceFilter(choices=EventType.choices)
    ok = StrictBooleanFilter()
    since = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Only events at or after this ISO-8601 time."
    )
    until = UTCDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Only events before this ISO-8601 time."
    )

    class Meta:
        model = IntegrationEvent
        fields = ["type", "ok", "since", "until"]
