"""The Celery application. Settings come from Django's, under the ``CELERY_`` prefix."""

import os

from celery import Celery, signals

from portal.heap import startup_heap_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_ready.connect  # the solo pool's process, and prefork's parent
@signals.worker_process_init.connect  # each prefork child
def _startup_heap_tune(**kwargs) -> None:
    startup_heap_tune()
