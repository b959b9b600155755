from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from integrations.observability import healthz_view, metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz_view, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("integrations.urls")),
    path("", RedirectView.as_view(url="/integrations", permanent=False)),
]
