"""A real Celery worker over Redis charges an event, and a websocket client sees it live."""

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from charging.models import Bucket, UsageEvent
from charging.services import usage_event_ingest
from portal.asgi import application
from portal.celery import app as celery_app
from tests.factories import MB, LineFactory, data_bucket
from tests.livetools import celery_worker, websocket_headers
from tests.services import redis_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


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
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=await database_sync_to_async(websocket_headers)(user)
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "ready"

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
