"""The quota store's Redis keys and the scripts that change them atomically.

Counters are plain integer keys holding the free part of a slice: ``<prefix>:free:b:<id>``
for a bucket, ``<prefix>:free:l:<id>`` for a limit. A session is a hash; its answers are
strings kept a day for repeats; the log is a stream the applier drains.
"""

from functools import lru_cache
from pathlib import Path

import redis
from django.conf import settings

from portal.db.profile_epoch import profiles_epoch_key, quota_prefix
from portal.db.redis import client

BUCKET = "b"
LIMIT = "l"
ROUNDS = 3  # a refill can be taken by concurrent requests before this one retries


def prefix() -> str:
    return quota_prefix()


def keep_seconds() -> int:
    """How long answers and ended sessions stay in the store for repeats (a network repeats a
    request within seconds; the database keeps ended sessions and their ledger for good)."""
    return int(getattr(settings, "CHARGING_QUOTA_KEEP_SECONDS", 900))


def counter_key(kind: str, pk: int) -> str:
    return f"{prefix()}:free:{kind}:{pk}"


@lru_cache(maxsize=1 << 16)  # the log names the same counters again and again
def counter_of(key: str) -> tuple[str, int]:
    """(kind, primary key) of a counter key."""
    *_, kind, pk = key.rsplit(":", 2)
    return kind, int(pk)


def session_key(source: str, session_id: str) -> str:
    return f"{prefix()}:s:{source}:{session_id}"


def answer_key(request_key: str) -> str:
    return f"{prefix()}:a:{request_key}"


def log_key() -> str:
    return f"{prefix()}:log"


def expiry_key() -> str:
    return f"{prefix()}:expiry"


def dry_key(counter: str) -> str:
    """Set for a moment when the database had nothing more for an allowance, so requests
    that find it short do not each ask the database again."""
    return f"{counter}:dry"


def epoch_key() -> str:
    return profiles_epoch_key()


def profile_key(msisdn: str, service: str) -> str:
    return f"{prefix()}:p:{msisdn}:{service}"


# How long Redis may hold a write before it is on disk, by its appendfsync setting.
_FSYNC_DELAY_MS = {"always": 0, "everysec": 2000, "no": 30_000}  # "no": the kernel's flush, about 30 s


def persistence() -> tuple[str, str]:
    """Redis's ``appendonly`` and ``appendfsync`` settings."""
    config = client().config_get("append*")
    return config.get("appendonly", "no"), config.get("appendfsync", "everysec")


def durable_until_ms() -> int | None:
    """The stream time (ms) up to which the log is on Redis's disk: entries up to it survive a
    crash of the Redis host. None when Redis keeps no append-only file (nothing survives),
    unless ``CHARGING_QUOTA_VOLATILE_REDIS`` says this Redis is a throw-away one (tests, the
    demo, benchmarks): then everything counts as durable."""
    appendonly, appendfsync = persistence()
    seconds, micros = client().time()
    now_ms = seconds * 1000 + micros // 1000
    if appendonly == "yes":
        return now_ms - _FSYNC_DELAY_MS.get(appendfsync, _FSYNC_DELAY_MS["no"])
    return now_ms if getattr(settings, "CHARGING_QUOTA_VOLATILE_REDIS", False) else None


def quota_store_clear() -> None:
    """Removes every key of this store (its prefix): for benchmarks and tests."""
    conn = client()
    keys = list(conn.scan_iter(match=f"{prefix()}:*", count=1000))
    for start in range(0, len(keys), 1000):
        conn.delete(*keys[start : start + 1000])


class Script:
    """A Lua script loaded once per client and called by its digest."""

    def __init__(self, name: str):
        self.source = (Path(__file__).parent / f"{name}.lua").read_text()
        self._scripts: dict[int, redis.commands.core.Script] = {}

    def __call__(self, *, keys: list[str], args: list) -> list:
        conn = client()
        script = self._scripts.get(id(conn))
        if script is None:
            script = self._scripts[id(conn)] = conn.register_script(self.source)
        return script(keys=keys, args=args)


session_step = Script("session_step")
event_charge = Script("event_charge")
slices_drain = Script("slices_drain")
