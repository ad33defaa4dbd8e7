"""The Redis channel layer, waiting for a free connection instead of failing at once, and
sending from synchronous code on a loop that keeps its connections.

channels-redis gives each event loop a pool of at most 100 connections, and redis-py's plain
pool raises as soon as all are busy: when hundreds of sockets of one process join or leave
their groups at once (a server restart, a burst of pages), the rest failed and left their
groups behind. A blocking pool makes them wait their turn for a moment instead.
"""

import asyncio
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

WAIT_FOR_CONNECTION_SECONDS = 20


class WaitingRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        host.setdefault("timeout", WAIT_FOR_CONNECTION_SECONDS)
        return BlockingConnectionPool.from_url(address, **host)


# --- Sending from synchronous code ---------------------------------------------------------------
# async_to_sync runs each call on a new event loop, and the layer keeps its connections per loop:
# every push from a worker or a request opened (and closed) connections to Redis of its own.
# With Redis, pushes go instead through one loop per process, in a thread of its own, which
# keeps its connections. The in-memory layer must run on the caller's loop (its queues belong
# to it), so it keeps async_to_sync.

_push_loop = {"pid": None, "loop": None}
_push_loop_lock = threading.Lock()
SEND_TIMEOUT_SECONDS = 30


def group_send_all(messages: list[tuple[str, dict]]) -> None:
    """Sends each ``(group, message)`` on the default channel layer, in order, from sync code."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    if isinstance(layer, RedisChannelLayer):
        future = asyncio.run_coroutine_threadsafe(_send_all(layer, messages), _loop())
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    else:
        async_to_sync(_send_all)(layer, messages)


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


def _loop() -> asyncio.AbstractEventLoop:
    with _push_loop_lock:
        if _push_loop["pid"] != os.getpid():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-pushes", daemon=True).start()
            _push_loop.update(pid=os.getpid(), loop=loop)
        return _push_loop["loop"]
