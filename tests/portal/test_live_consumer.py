import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from charging.services import usage_event_charge, usage_event_ingest
from portal.asgi import application
from portal.consumers import CLOSE_UNAUTHENTICATED
from tests.factories import MB, LineFactory, data_bucket
from tests.livetools import websocket_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = await database_sync_to_async(websocket_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


def charge(line, external_id: str, quantity: int) -> None:
    with transaction.atomic():
        event, _ = usage_event_ingest(
            payload={"external_id": external_id, "msisdn": line.msisdn, "service": "data", "quantity": quantity}
        )
    usage_event_charge(event_id=event.pk)


async def test_socket_refuses_an_anonymous_user():
    communicator, connected, code = await connect()

    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


async def test_socket_refuses_someone_elses_line_and_sends_nothing_of_it():
    mine = await database_sync_to_async(LineFactory)()
    theirs = await database_sync_to_async(LineFactory)()
    await database_sync_to_async(data_bucket)(theirs, 10 * MB)
    user = await database_sync_to_async(lambda: mine.billing_account.customer.user)()
    communicator, connected, _ = await connect(user)
    assert connected
    assert await communicator.receive_json_from() == {"type": "ready", "lines": [mine.pk]}

    await communicator.send_json_to({"action": "subscribe", "line": theirs.pk})
    answer = await communicator.receive_json_from()
    await database_sync_to_async(charge)(theirs, "theirs-1", MB)

    assert answer == {"type": "error", "code": "not_found", "line": theirs.pk}
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_owner_receives_the_new_balance_when_a_charge_commits():
    line = await database_sync_to_async(LineFactory)()
    bucket = await database_sync_to_async(data_bucket)(line, 10 * MB)
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    communicator, connected, _ = await connect(user)
    assert connected
    await communicator.receive_json_from()  # ready

    await database_sync_to_async(charge)(line, "mine-1", 3 * MB)
    message = await communicator.receive_json_from(timeout=2)

    assert message["type"] == "line.changed"
    assert message["line"] == line.pk
    assert [(b["id"], b["remaining"], b["display"]) for b in message["buckets"]] == [(bucket.pk, 7 * MB, "7.0 MB")]
    await communicator.disconnect()
