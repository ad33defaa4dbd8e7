"""With a real Celery worker over Redis: readiness sees it, and /metrics counts the usage
records it charges in its own process."""

import time
import uuid

import pytest

from portal.celery import app as celery_app
from portal.counters import USAGE_RECORDS_CHARGED, counters_read
from portal.processes import celery_worker, celery_workers_wait
from tests.factories import MB, LineFactory, data_bucket
from tests.services import redis_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(settings):
    settings.REDIS_URL = redis_url()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    with celery_worker(queue=queue) as started:
        celery_workers_wait([started])
        yield started
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous


def test_ready_sees_a_running_worker_and_metrics_count_what_it_charges(worker, client, usage_poster):
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 100 * MB)
    before = counters_read().get(USAGE_RECORDS_CHARGED, 0)

    ready = client.get("/ready/")
    records = [{"external_id": f"w-{n}", "msisdn": line.msisdn, "service": "data", "quantity": MB} for n in range(3)]
    assert usage_poster.post("/api/usage/bulk/", {"records": records}, format="json").status_code == 202
    deadline = time.monotonic() + 30
    while counters_read().get(USAGE_RECORDS_CHARGED, 0) - before < 3:
        assert time.monotonic() < deadline, "the worker did not charge the records in 30 s"
        time.sleep(0.1)

    assert ready.status_code == 200
    assert ready.json()["checks"]["workers"] == {"status": "ok"}
    assert counters_read()[USAGE_RECORDS_CHARGED] - before == 3
