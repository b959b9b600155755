from django.apps import AppConfig


class SyncConfig(AppConfig):
    """The change-data pipeline: verified BambooHR webhooks and a local mirror kept fresh by them and by
    scheduled reconciliation."""

    name = "integrations.sync"
    label = "sync"
    verbose_name = "HR data mirror"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The mirror's tasks registered with Celery in every process (the web process sends them by name).
        from integrations.sync import tasks  # noqa: F401
