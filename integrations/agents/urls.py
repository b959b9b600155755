"""/api/agent-profiles (REST) — included under api/ in config/urls.py."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from integrations.agents.api import AgentProfileViewSet

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("agent-profiles", AgentProfileViewSet, basename="agent-profile")

urlpatterns = router.urls
