"""Queueing Celery tasks from services, by the task's name.

A task module imports the services its tasks run; a service that queues a task names it
rather than importing it, so the two never import each other. Each app imports its task
module when Django starts (``AppConfig.ready``), so every name is registered in every process.
"""

from celery import current_app
from django.db import transaction


def task_queue(name: str, *args) -> None:
    """Queues the task now (in the embedded mode, runs it now)."""
    current_app.tasks[name].delay(*args)


def task_queue_on_commit(name: str, *args) -> None:
    """Queues the task once the surrounding transaction commits (at once outside one)."""
    transaction.on_commit(lambda: task_queue(name, *args))
