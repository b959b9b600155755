"""OAuth2 authorization-code routes, included under ``oauth/`` by config/urls.py.

One fixed callback URL (providers require the registered redirect URI to match exactly); the state
says which integration an answer belongs to.
"""

from django.urls import path

from integrations.oauth import views

app_name = "oauth"

urlpatterns = [
    path("<slug:integration_id>/start/", views.start, name="start"),
    path("callback/", views.callback, name="callback"),
]
