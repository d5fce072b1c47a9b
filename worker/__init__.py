"""The Celery app, so `celery -A worker worker|beat|flower` works with the usual tooling."""

from worker.celery_app import app

__all__ = ["app"]
