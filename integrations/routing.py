"""WebSocket routes (Channels); config/asgi.py mounts them behind the session auth middleware."""

from django.urls import path

from integrations.consumers import IntegrationEventsConsumer

websocket_urlpatterns = [
    path("ws/integrations/", IntegrationEventsConsumer.as_asgi()),
]
