"""Beat's schedule names tasks the workers know."""

from django.conf import settings

from portal.celery import app


def test_every_scheduled_task_is_one_the_workers_run():
    app.loader.import_default_modules()  # the apps' task modules, as a worker loads them

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "charging.tasks.requeue_uncharged_usage" in scheduled
    assert scheduled <= set(app.tasks)
