"""Dashboard pages (the REST API has its own urls in ``integrations.api``)."""

from django.urls import path

from integrations import views

app_name = "dashboard"

urlpatterns = [
    path("integrations", views.integration_list, name="list"),
    path("integrations/new", views.integration_new, name="new"),
    path("integrations/<str:integration_id>", views.integration_detail, name="detail"),
    path("integrations/<str:integration_id>/delete", views.integration_delete, name="delete"),
    path(
        "integrations/<str:integration_id>/<str:action>",
        views.integration_action,
        name="action",
    ),
]
