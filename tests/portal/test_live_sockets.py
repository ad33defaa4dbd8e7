"""Live sockets against the real channel layer: quiet ones stay open, and every way a socket
ends leaves its groups, so nobody's charges are snapshotted for a page that is gone."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer

from charging.live import account_group, line_group
from charging.watchers import watch_counts, watched_sequences
from portal.asgi import application
from tests.factories import MB, LineFactory, data_bucket
from tests.livetools import data_charged, until_ready, websocket_headers
from tests.services import redis_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def real_channel_layer():
    redis_url()
    assert isinstance(get_channel_layer(), RedisChannelLayer)


async def owners_socket(line, timeout: float = 2) -> WebsocketCommunicator:
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    headers = await database_sync_to_async(websocket_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect(timeout=timeout)
    assert connected
    await until_ready(communicator, timeout=timeout)
    return communicator


async def line_with_allowance():
    line = await database_sync_to_async(LineFactory)()
    await database_sync_to_async(data_bucket)(line, 100 * MB)
    return line


async def test_a_socket_quiet_for_longer_than_the_layers_wait_still_gets_the_next_push():
    line = await line_with_allowance()
    socket = await owners_socket(line)

    # Longer than the layer's blocking wait for messages, with nothing to receive.
    await asyncio.sleep(get_channel_layer().brpop_timeout + 2)
    await database_sync_to_async(data_charged)(line, "quiet-1", 10 * MB)

    pushed = await socket.receive_json_from(timeout=3)
    assert (pushed["type"], pushed["buckets"][0]["remaining"]) == ("line.changed", 90 * MB)
    await socket.disconnect()


async def test_a_socket_that_fails_leaves_its_groups_and_nobody_watches_its_line():
    line = await line_with_allowance()
    groups = [line_group(line.pk), account_group(line.billing_account_id)]
    socket = await owners_socket(line)
    watching = await database_sync_to_async(watch_counts)(groups)

    await socket.send_to(text_data="{not json")  # the consumer raises decoding it
    with pytest.raises(json.JSONDecodeError):
        await socket.receive_output(timeout=2)

    assert watching == dict.fromkeys(groups, 1)
    assert await database_sync_to_async(watch_counts)(groups) == dict.fromkeys(groups, 0)
    assert await database_sync_to_async(watched_sequences)(groups) == {}  # no push is prepared


async def test_watch_counts_are_exact_however_sockets_end():
    line = await line_with_allowance()
    group = line_group(line.pk)
    closed, cancelled, failed, staying = [await owners_socket(line) for _ in range(4)]
    assert await database_sync_to_async(watch_counts)([group]) == {group: 4}

    await closed.disconnect()
    cancelled.future.cancel()  # the server dropped the connection's task
    await failed.send_to(text_data="[")
    with pytest.raises(json.JSONDecodeError):
        await failed.receive_output(timeout=2)
    with pytest.raises(asyncio.CancelledError):
        await cancelled.future

    assert await database_sync_to_async(watch_counts)([group]) == {group: 1}
    await database_sync_to_async(data_charged)(line, "after-1", 5 * MB)
    assert (await staying.receive_json_from(timeout=3))["buckets"][0]["remaining"] == 95 * MB
    await staying.disconnect()
    assert await database_sync_to_async(watch_counts)([group]) == {group: 0}


async def test_a_burst_of_sockets_leaving_at_once_all_leave():
    line = await line_with_allowance()
    group = line_group(line.pk)
    # More than a loop's connections to Redis: the later ones wait their turn, none fails.
    sockets = await asyncio.gather(*(owners_socket(line, timeout=60) for _ in range(120)))
    assert await database_sync_to_async(watch_counts)([group]) == {group: 120}

    await asyncio.gather(*(socket.disconnect() for socket in sockets))

    assert await database_sync_to_async(watch_counts)([group]) == {group: 0}
