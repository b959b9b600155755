from django.urls import path

from integrations.sync import views

app_name = "sync"
urlpatterns = [
    path("hooks/bamboohr/<str:integration_id>/", views.bamboohr_webhook, name="bamboohr-webhook"),
]
