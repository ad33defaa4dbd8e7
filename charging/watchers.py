"""Who watches which live group, and each group's push sequence.

Every server process counts its sockets per group in a hash of its own and keeps an entry in
a registry of live processes, refreshed while it has sockets (``watching_refresh``). A process
that dies drops out of the registry when its entry expires, and its counts with it, so a group
nobody watches any more stops being snapshotted and pushed.

Each push carries the group's sequence number, taken *before* the snapshot is read: a page
keeps the highest it has seen and ignores anything older. Two publishers may deliver their
pushes out of order; the one with the higher number read the database later, so it holds
every change the other holds. Numbers follow the clock (at least one more than the last), so
they keep growing after Redis loses them.

Without Redis (one process, in-memory layer) every group counts as watched and the sequence
lives in the process.
"""

import os
import threading
import time
import uuid
from collections.abc import Iterable

from django.conf import settings

from portal.db.redis import client_if_configured

_REFRESH_EVERY_SECONDS = 5

_process = {"pid": None, "id": ""}
_last_refresh = {"at": 0.0}
_local_sequences: dict[str, int] = {}
_local_lock = threading.Lock()
_scripts: dict[tuple[int, str], object] = {}


def _key(name: str) -> str:
    return f"{settings.CHANNELS_PREFIX}:live:{name}"


def _process_id() -> str:
    """This process's name in the registry (a forked child gets a name of its own)."""
    if _process["pid"] != os.getpid():
        _process.update(pid=os.getpid(), id=f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
    return _process["id"]


def _registry_ttl() -> int:
    """How long a process stays registered without refreshing: a few missed heartbeats."""
    return max(45, int(3 * settings.LIVE_HEARTBEAT_SECONDS))


def _counts_key(process: str) -> str:
    return _key(f"watch:{process}")


_UNWATCH = """
for i, group in ipairs(ARGV) do
    if redis.call('HINCRBY', KEYS[1], group, -1) <= 0 then redis.call('HDEL', KEYS[1], group) end
end
"""

# Sums each group's count over the live processes and, for the watched ones, moves the
# sequence on: max(last + 1, the server's clock in microseconds). 0 for a group nobody watches.
_WATCHED_SEQUENCES = """
local now = redis.call('TIME')
local now_seconds = tonumber(now[1])
local clock = now_seconds * 1000000 + tonumber(now[2])
local processes = redis.call('ZRANGEBYSCORE', KEYS[1], now_seconds, '+inf')
local result = {}
for i, group in ipairs(ARGV) do
    local watching = 0
    for _, process in ipairs(processes) do
        watching = watching + tonumber(redis.call('HGET', KEYS[3] .. process, group) or '0')
    end
    if watching > 0 then
        local next = math.max(tonumber(redis.call('HGET', KEYS[2], group) or '0') + 1, clock)
        redis.call('HSET', KEYS[2], group, string.format('%d', next))
        result[i] = next
    else
        result[i] = 0
    end
end
return result
"""


def _script(conn, source: str):
    """``source`` loaded into Redis once per client and called by its digest (a publish runs
    one with every charge)."""
    key = (id(conn), source)
    if key not in _scripts:
        _scripts[key] = conn.register_script(source)
    return _scripts[key]


def groups_watch(groups: Iterable[str]) -> None:
    """This process has one more socket in each of ``groups``."""
    groups = list(groups)
    conn = client_if_configured()
    if conn is None or not groups:
        return
    counts = _counts_key(_process_id())
    with conn.pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.hincrby(counts, group, 1)
        _register(pipe, counts)
        pipe.execute()
    _last_refresh["at"] = time.monotonic()


def groups_unwatch(groups: Iterable[str]) -> None:
    """This process has one socket fewer in each of ``groups``."""
    groups = list(groups)
    conn = client_if_configured()
    if conn is None or not groups:
        return
    _script(conn, _UNWATCH)(keys=[_counts_key(_process_id())], args=groups)


def watching_refresh() -> None:
    """Keeps this process in the registry (at most once every few seconds, however many
    sockets call it)."""
    conn = client_if_configured()
    if conn is None or time.monotonic() - _last_refresh["at"] < _REFRESH_EVERY_SECONDS:
        return
    _last_refresh["at"] = time.monotonic()
    with conn.pipeline(transaction=False) as pipe:
        _register(pipe, _counts_key(_process_id()))
        # Processes that stopped refreshing leave the registry (their counts expire by themselves).
        pipe.zremrangebyscore(_key("processes"), "-inf", f"({int(time.time())}")
        pipe.execute()


def _register(pipe, counts: str) -> None:
    pipe.expire(counts, _registry_ttl())
    pipe.zadd(_key("processes"), {_process_id(): int(time.time()) + _registry_ttl()})


def watch_counts(groups: list[str]) -> dict[str, int]:
    """How many sockets of live processes watch each group."""
    conn = client_if_configured()
    if conn is None:
        return {}
    processes = conn.zrangebyscore(_key("processes"), int(time.time()), "+inf")
    totals = dict.fromkeys(groups, 0)
    for process in processes:
        counts = conn.hmget(_counts_key(process.decode()), groups) if groups else []
        for group, count in zip(groups, counts, strict=True):
            totals[group] += int(count or 0)
    return totals


def watched_sequences(groups: list[str]) -> dict[str, int]:
    """Those of ``groups`` somebody watches, each with its next push sequence number."""
    if not groups:
        return {}
    conn = client_if_configured()
    if conn is None:
        with _local_lock:
            for group in groups:
                _local_sequences[group] = max(_local_sequences.get(group, 0) + 1, time.time_ns() // 1000)
            return {group: _local_sequences[group] for group in groups}
    keys = [_key("processes"), _key("sequences"), _key("watch:")]
    numbers = _script(conn, _WATCHED_SEQUENCES)(keys=keys, args=groups)
    return {group: int(number) for group, number in zip(groups, numbers, strict=True) if int(number)}


def current_sequences(groups: list[str]) -> dict[str, int]:
    """Each group's last push sequence number (0: never pushed); read before a snapshot, it
    tells which later pushes are newer than that snapshot."""
    if not groups:
        return {}
    conn = client_if_configured()
    if conn is None:
        with _local_lock:
            return {group: _local_sequences.get(group, 0) for group in groups}
    return {group: int(n or 0) for group, n in zip(groups, conn.hmget(_key("sequences"), groups), strict=True)}
