"""Where config/urls.py found the OAuth2 routes before they moved to ``integrations.oauth.urls``."""

from integrations.oauth.urls import app_name, urlpatterns

__all__ = ["app_name", "urlpatterns"]
