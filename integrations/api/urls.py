"""/api/...: every route answers with and without a trailing slash (the seed's clients use none)."""

from __future__ import annotations

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from integrations.api import views

app_name = "api"

router = DefaultRouter()
router.trailing_slash = "/?"  # the constructor only takes a boolean
# No ".json" suffix routes: the schema does not offer them, and the extra `format` argument broke actions (500).
router.include_format_suffixes = False
router.register("integrations", views.IntegrationViewSet, basename="integration")
router.register(
    r"integrations/(?P<integration_id>[^/.]+)/events", views.IntegrationEventViewSet, basename="integration-events"
)
router.register("connector-types", views.ConnectorTypeViewSet, basename="connector-type")

urlpatterns = [
    re_path(r"^health/?$", views.HealthView.as_view(), name="health"),
    re_path(r"^operations/(?P<operation_id>[^/.]+)/?$", views.OperationView.as_view(), name="operation-detail"),
    *router.urls,
    # Last: whatever else lies under these prefixes (an id with a dot, a typo) is a JSON 404.
    re_path(r"^(?P<path>(integrations|connector-types|operations)(/[\s\S]*)?)$", views.not_found),
]
