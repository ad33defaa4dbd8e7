"""The Redis channel layer, waiting for a free connection instead of failing at once, and
sending from synchronous code on a loop that keeps its connections.

channels-redis gives each event loop a pool of at most 100 connections, and redis-py's plain
pool raises as soon as all are busy: when hundreds of sockets of one process join or leave
their groups at once (a server restart, a burst of pages), the rest failed and left their
groups behind. A blocking pool makes them wait their turn for a moment instead.
"""

import asyncio
import collections
import logging
import os
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)

WAIT_FOR_CONNECTION_SECONDS = 20


# Adds each message to its channel's queue unless the queue is full (as channels-redis does),
# dropping the queue's expired messages first. ARGV: the messages, then each key's capacity,
# then the time and the messages' expiry. A queue is ordered by score: each message is scored
# a microsecond after the one before, so one process receives them in the order given.
_SEND_TO_CHANNELS = """
local count = #KEYS
local now = tonumber(ARGV[2 * count + 1])
local expiry = tonumber(ARGV[2 * count + 2])
local full = 0
for i = 1, count do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', KEYS[i], now + i / 1000000, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        full = full + 1
    end
end
return full
"""


# Puts back what an interrupted receive had taken (its backup), then takes up to ARGV[1] waiting
# messages, keeping a copy in the backup until they are handed out.
_TAKE_WAITING = """
local kept = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #kept, 2 do
    redis.call('ZADD', KEYS[1], kept[i + 1], kept[i])
end
redis.call('DEL', KEYS[2])
local taken = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
for i = 1, #taken, 2 do
    redis.call('ZADD', KEYS[2], taken[i + 1], taken[i])
end
if #taken > 0 then
    redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return taken
"""


class WaitingRedisChannelLayer(RedisChannelLayer):
    RECEIVE_BATCH = 500

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._taken: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._backed_up: dict[str, bool] = {}  # channels whose backup holds what ``_taken`` holds
        self._scripts: dict[tuple[int, str], object] = {}

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        host.setdefault("timeout", WAIT_FOR_CONNECTION_SECONDS)
        return BlockingConnectionPool.from_url(address, **host)

    async def receive_single(self, channel):
        """For this process's own channel (every socket's messages come through it): takes
        every waiting message, up to a batch, in one round trip and hands them out one by one,
        instead of four round trips per message; waits with a blocking pop only when none is
        waiting. As channels-redis does, what is taken stays in a backup until handed out, and
        a receive that was interrupted puts it back."""
        if not channel.endswith("!"):
            return await super().receive_single(channel)
        taken = self._taken[channel]
        if not taken:
            await self._take(channel, taken)
        message = self.deserialize(taken.popleft())
        if not taken and self._backed_up.pop(channel, False):
            await self.connection(self.consistent_hash(channel)).delete(
                self._backup_channel_name(self.prefix + channel)
            )
        return message.pop("__asgi_channel__", channel), message

    async def _take(self, channel: str, taken: collections.deque) -> None:
        """Fills ``taken``: with what is waiting (kept in the backup), else with the next
        message to arrive (handed out at once, so not backed up)."""
        key = self.prefix + channel
        connection = self.connection(self.consistent_hash(channel))
        take_waiting = self._script(connection, _TAKE_WAITING)
        while not taken:
            waiting = await take_waiting(
                keys=[key, self._backup_channel_name(key)], args=[self.RECEIVE_BATCH, self.expiry]
            )
            if waiting:
                taken.extend(waiting[0::2])
                self._backed_up[channel] = True
                return
            popped = await connection.bzpopmin(key, timeout=self.brpop_timeout)
            if popped is not None:
                taken.append(popped[1])

    def _script(self, connection, source: str):
        """``source`` loaded into Redis once per connection pool and called by its digest."""
        key = (id(connection), source)
        if key not in self._scripts:
            self._scripts[key] = connection.register_script(source)
        return self._scripts[key]

    async def group_send_many(self, messages: list[tuple[str, dict]]) -> None:
        """Sends each ``(group, message)`` as ``group_send`` would, in two round trips per Redis
        server (the groups' members, then every message) instead of four per group: a charge
        pushes to dozens of groups at once. Built on channels-redis's own keys and message
        layout (the version is pinned; the live tests run it against Redis)."""
        by_server: dict[int, list[tuple[str, dict]]] = {}
        for group, message in messages:
            by_server.setdefault(self.consistent_hash(group), []).append((group, message))
        for index, sends in by_server.items():
            connection = self.connection(index)
            now = int(time.time())
            async with connection.pipeline(transaction=False) as pipe:
                for group, _ in sends:
                    pipe.zremrangebyscore(self._group_key(group), min=0, max=now - self.group_expiry)
                    pipe.zrange(self._group_key(group), 0, -1)
                members = (await pipe.execute())[1::2]
            keys_by_server: dict[int, list[tuple[bytes, bytes, int]]] = {}
            for (_, message), channels in zip(sends, members, strict=True):
                names = [channel.decode() for channel in channels]
                to_server, payloads, capacities = self._map_channel_keys_to_connection(names, message)
                for server, keys in to_server.items():
                    keys_by_server.setdefault(server, []).extend((k, payloads[k], capacities[k]) for k in keys)
            for server, entries in keys_by_server.items():
                keys, payloads, capacities = zip(*entries, strict=True)
                send = self._script(self.connection(server), _SEND_TO_CHANNELS)
                full = await send(keys=list(keys), args=[*payloads, *capacities, time.time(), self.expiry])
                if full:
                    logger.info("%s pushes dropped: their channels were over capacity", full)


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
    if isinstance(layer, WaitingRedisChannelLayer):
        await layer.group_send_many(messages)
        return
    for group, message in messages:
        await layer.group_send(group, message)


def _loop() -> asyncio.AbstractEventLoop:
    with _push_loop_lock:
        if _push_loop["pid"] != os.getpid():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-pushes", daemon=True).start()
            _push_loop.update(pid=os.getpid(), loop=loop)
        return _push_loop["loop"]
