from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agent profiles: which tools, integrations, fields, records and quotas an agent token has."""

    name = "integrations.agents"
    label = "agents"
    verbose_name = "Agent profiles"
    default_auto_field = "django.db.models.BigAutoField"
