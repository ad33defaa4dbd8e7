"""/metrics counts the websockets this process holds open."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from prometheus_client.parser import text_string_to_metric_families

from portal.asgi import application
from portal.operations.metrics import metrics_text
from tests.factories import LineFactory
from tests.livetools import websocket_headers

pytestmark = pytest.mark.django_db(transaction=True)


def open_websockets() -> float:
    families = text_string_to_metric_families(metrics_text().decode())
    return next(s.value for f in families for s in f.samples if s.name == "portal_websockets_open")


async def connect(user=None) -> tuple[WebsocketCommunicator, bool]:
    headers = await database_sync_to_async(websocket_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_open_websockets_are_counted_until_they_close():
    line = await database_sync_to_async(LineFactory)()
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    before = open_websockets()

    first, _ = await connect(user)
    second, _ = await connect(user)
    refused, connected = await connect()  # anonymous: closed before it is accepted
    while_open = open_websockets()
    await first.disconnect()
    await second.disconnect()

    assert not connected
    assert while_open - before == 2
    assert open_websockets() == before
