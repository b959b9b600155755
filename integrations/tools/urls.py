"""Mounted at /api/tools/ (config/urls.py, before the generic api/ include). Trailing slash optional."""

from django.urls import re_path

from integrations.tools import api

urlpatterns = [
    re_path(r"^$", api.ToolCatalogView.as_view(), name="tools-catalog"),
    re_path(r"^calls/?$", api.ToolCallListView.as_view(), name="tools-calls"),
    re_path(r"^calls/(?P<pk>[0-9]+)/?$", api.ToolCallDetailView.as_view(), name="tools-call"),
    re_path(r"^(?P<name>[a-z_]{1,64})/invoke/?$", api.ToolInvokeView.as_view(), name="tools-invoke"),
]
