"""A real Celery worker over Redis charges an event, or applies the quota store's log, and a
websocket client sees it live; it keeps its database connection from one task to the next."""

import time
import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection

from charging.models import Bucket, ChargingSession, UsageEvent
from charging.online import session_start, session_terminate
from charging.quota.store import quota_store_clear
from charging.tasks import apply_quota_log
from charging.usage_events import usage_event_ingest
from portal.asgi import application
from portal.celery import app as celery_app
from portal.processes import celery_worker
from tests.factories import MB, LineFactory, data_bucket
from tests.livetools import until_ready, websocket_headers
from tests.services import redis_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def owners_socket(line) -> WebsocketCommunicator:
    """The line's owner's live websocket, connected and ready."""
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=await database_sync_to_async(websocket_headers)(user)
    )
    connected, _ = await communicator.connect()
    assert connected
    await until_ready(communicator)
    return communicator


@pytest.fixture
def worker_queue():
    redis_url()
    queue = f"test-{uuid.uuid4().hex[:8]}"
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    with celery_worker(queue=queue) as worker:
        yield worker
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous


async def test_real_worker_charges_the_event_and_the_socket_receives_it(worker_queue):
    line = await database_sync_to_async(LineFactory)()
    bucket = await database_sync_to_async(data_bucket)(line, 20 * MB)
    communicator = await owners_socket(line)

    event, _ = await database_sync_to_async(usage_event_ingest)(
        payload={"external_id": "worker-1", "msisdn": line.msisdn, "service": "data", "quantity": 4 * MB}
    )
    # The worker may need a moment to boot and connect: wait for the push, bounded.
    message = await communicator.receive_json_from(timeout=30)

    assert message["type"] == "line.changed"
    assert message["buckets"][0]["remaining"] == 16 * MB
    assert await database_sync_to_async(lambda: Bucket.objects.get(pk=bucket.pk).remaining)() == 16 * MB
    stored = await database_sync_to_async(UsageEvent.objects.get)(pk=event.pk)
    assert stored.status == UsageEvent.Status.CHARGED
    await communicator.disconnect()


@pytest.fixture
def quota_worker(settings):
    """A real worker with the quota store on, on keys of this test's own."""
    settings.REDIS_URL = redis_url()
    settings.CHARGING_QUOTA_STORE = True
    settings.CHARGING_QUOTA_PREFIX = f"test-quota-{uuid.uuid4().hex[:12]}"
    settings.CHARGING_QUOTA_VOLATILE_REDIS = True  # the test Redis keeps no append-only file
    queue = f"test-{uuid.uuid4().hex[:8]}"
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    env = {
        "CHARGING_QUOTA_STORE": "1",
        "CHARGING_QUOTA_PREFIX": settings.CHARGING_QUOTA_PREFIX,
        "CHARGING_QUOTA_VOLATILE_REDIS": "1",
    }
    with celery_worker(queue=queue, env=env) as worker:
        yield worker
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous
    quota_store_clear()


async def test_a_real_worker_applies_the_quota_stores_log_and_the_socket_sees_the_balance(quota_worker):
    line = await database_sync_to_async(LineFactory)()
    bucket = await database_sync_to_async(data_bucket)(line, 20 * MB)
    communicator = await owners_socket(line)

    start = {"session_id": "store-1", "msisdn": line.msisdn, "service": "data", "requested_units": 5 * MB}
    await database_sync_to_async(session_start)(**start)
    await database_sync_to_async(session_terminate)(session_id="store-1", request_number=1, used_units=4 * MB)
    assert await database_sync_to_async(lambda: Bucket.objects.get(pk=bucket.pk).remaining)() == 20 * MB
    apply_quota_log.delay()  # what beat sends every second
    message = await communicator.receive_json_from(timeout=30)

    assert message["type"] == "line.changed"
    assert message["buckets"][0]["remaining"] == 16 * MB
    session = await database_sync_to_async(ChargingSession.objects.get)(session_id="store-1")
    assert (session.status, session.used_units) == ("terminated", 4 * MB)
    await communicator.disconnect()


def _charged(event_id: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while UsageEvent.objects.get(pk=event_id).status != UsageEvent.Status.CHARGED:
        assert time.monotonic() < deadline, f"event {event_id} was not charged in {timeout:.0f} s"
        time.sleep(0.02)


def _other_backends() -> dict[int, object]:
    """The database's other client connections (not the server's own workers, such as
    autovacuum's): process id -> when it connected."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return dict(cursor.fetchall())


@pytest.mark.postgres
def test_a_real_worker_keeps_its_database_connection_from_one_task_to_the_next(worker_queue):
    """A charging task on a fresh connection starts a cold server process: workers keep theirs."""
    line = LineFactory()
    data_bucket(line, 20 * MB)
    before = _other_backends()

    def charge(external_id: str) -> dict[int, object]:
        event, _ = usage_event_ingest(
            payload={"external_id": external_id, "msisdn": line.msisdn, "service": "data", "quantity": MB}
        )
        _charged(event.pk)
        return {pid: started for pid, started in _other_backends().items() if pid not in before}

    after_first = charge("keep-1")
    after_second = charge("keep-2")

    assert len(after_first) == 1, "the worker's connection is open after its task"
    assert after_second == after_first, "the next task ran on the same connection"
