from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import worker_signals  # imports models through services: only once apps are ready

        worker_signals.connect()

        from integrations import stored_secrets  # finds its models through the app registry

        stored_secrets.connect()

        # The hub's tasks registered with Celery in every process (web too, not only workers, where
        # autodiscovery would find them): the services send them by name (services.OPERATION_TASKS).
        from integrations import tasks  # noqa: F401
