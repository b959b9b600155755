from django.apps import AppConfig


class ToolsConfig(AppConfig):
    """The agent tools: their own app (label ``tools``) inside integrations/, over the integrations' models.

    Its tables keep the names they had when the tools belonged to the ``integrations`` app
    (``integrations_agenttoken`` ...): migration 0001 moved the models without touching the database.
    """

    name = "integrations.tools"
    label = "tools"
    verbose_name = "Agent tools"
    default_auto_field = "django.db.models.BigAutoField"
