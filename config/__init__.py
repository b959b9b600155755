# Load the Celery app with Django so that shared_task binds to it and tasks can be sent from the web.
from config.celery import app as celery_app

__all__ = ["celery_app"]
