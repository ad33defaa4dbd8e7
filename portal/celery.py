"""The Celery application. Settings come from Django's, under the ``CELERY_`` prefix."""

import os

from celery import Celery, signals
from django.db import close_old_connections

from portal.counters import USAGE_RECORDS_CHARGED, counter_add
from portal.heap import startup_heap_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect  # the solo pool's process, and prefork's parent
@signals.worker_process_init.connect  # each prefork child
def _startup_heap_tune(**kwargs) -> None:
    startup_heap_tune()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Around each task, as around each request: a connection that broke or outlived
    CONN_MAX_AGE is closed, the others are kept (``CELERY_DB_REUSE_MAX`` in the settings).
    A task run eagerly runs inside its caller's work, whose connection is not the task's."""
    if task is not None and task.request.is_eager:
        return
    close_old_connections()


@signals.task_success.connect
def _count_usage_charged(sender=None, result=None, **kwargs) -> None:
    """Usage records charged, for the operators' metrics: one count for every worker."""
    if sender.name == "charging.tasks.charge_usage_batch" and result:
        counter_add(name=USAGE_RECORDS_CHARGED, by=result)
    elif sender.name == "charging.tasks.charge_usage_event" and result == "charged":
        counter_add(name=USAGE_RECORDS_CHARGED)
