from django.urls import path
from rest_framework.routers import SimpleRouter

from integrations.sync import api, views

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("api/subscriptions", api.SubscriptionViewSet, basename="subscription")

app_name = "sync"
urlpatterns = [
    path("hooks/bamboohr/<str:integration_id>/", views.bamboohr_webhook, name="bamboohr-webhook"),
    path("api/changes", api.changes, name="changes"),
    path("api/integrations/<str:integration_id>/mirror", api.mirror_status, name="mirror"),
    path("api/integrations/<str:integration_id>/mirror/resync", api.resync, name="mirror-resync"),
    *router.urls,
]
