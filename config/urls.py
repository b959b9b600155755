from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.utils.functional import lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from integrations.monitoring_views import healthz_view, metrics_view

# The admin's "View site" becomes a "Dashboard" link (templates/admin/base_site.html).
admin.site.site_url = None

urlpatterns = [
    # The agent tools' admin pages moved with their app (label "tools"): links to the old ones still land.
    re_path(
        r"^admin/integrations/(?P<page>(?:agenttoken|toolcall|writeintent)/.*)$",
        RedirectView.as_view(url="/admin/tools/%(page)s", permanent=True, query_string=True),
    ),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on pages that name none (the admin's included): the hub's icon, not a 404.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.svg"), permanent=True)),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz_view, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/tools/", include("integrations.tools.urls")),  # agent tools (before the generic api/)
    path("api/", include("integrations.agents.urls")),  # /api/agent-profiles
    path("api/", include("integrations.api.urls")),
    path("api-auth/", include("rest_framework.urls")),  # log in / out links of the browsable API
    path("oauth/", include("integrations.oauth.urls")),  # OAuth2 authorization start + callback
    path("", include("integrations.sync.urls")),  # /hooks/bamboohr/<id>/: BambooHR's signed webhooks
    path("", include("integrations.agents.page_urls")),  # /agents: the agent profiles' pages
    path("", include("integrations.urls")),
    path("", RedirectView.as_view(url="/integrations", permanent=False)),
]
