"""Dashboard pages of the agent profiles (included at the site root by config/urls.py)."""

from django.urls import path

from integrations.agents import views

app_name = "agents"

urlpatterns = [
    path("agents", views.profile_list, name="list"),
    path("agents/<int:pk>", views.profile_detail, name="detail"),
]
