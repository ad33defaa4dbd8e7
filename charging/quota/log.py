"""Applying the quota store's log to the database, in batches, each entry exactly once.

Every session step that settles, and every single event, appends an entry: what it took from
each allowance and limit, and how the session ended (or the event's answer). A batch is one
transaction that moves the counters (out of their slices), writes a ledger entry per
allowance an entry drew on, records ended sessions and charged events (a refund finds them)
and moves the log position, so a crash anywhere repeats nothing. Threshold notices and live
pushes follow, as after any charge. (Session answers stay in the store for repeats,
``keep_seconds``: a network repeats a request within seconds, and the database keeps what
the answers did.)
"""

import logging
import os
import time
from collections import defaultdict
from datetime import datetime
from functools import partial
from threading import Event

import orjson
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, connections, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from charging import live
from charging.ledger import bucket_entry, ledger_write
from charging.locks import buckets_lock_by_id, node_limits_lock, quota_log_position_lock
from charging.models import (
    Bucket,
    ChargingRequest,
    ChargingSession,
    LedgerEntry,
    NodeLimit,
    QuotaLogPosition,
    QuotaLogSetAside,
    Reservation,
)
from charging.periods import limit_count, limit_periods_roll
from charging.quota import store
from charging.requests import ANSWER_STATUS
from charging.thresholds import thresholds_check
from charging.units import USAGE_REASON
from portal.db.rows import rows_insert, rows_update

SESSION_FIELDS = [
    "source",
    "session_id",
    "line_id",
    "service",
    "zone",
    "status",
    "request_number",
    "used_units",
    "amount_charged",
    "opened_at",
    "updated_at",
]


class LogNotDurable(Exception):
    """Redis keeps no append-only file: what the log holds would not survive a crash."""


def log_apply(*, batch: int = 2000, durable_until_ms: int | None = None) -> int:
    """Applies what the log holds and Redis has made durable (``batch`` entries per
    transaction); returns how many. An entry is applied only once it is on Redis's disk:
    applied sooner, a Redis crash that lost it would leave the database holding usage the
    store forgot, and the store granting it again."""
    if durable_until_ms is None:
        durable_until_ms = store.durable_until_ms()
    if durable_until_ms is None:
        raise LogNotDurable("Redis keeps no append-only file: set appendonly yes (see the README)")
    applied = 0
    while True:
        count = _apply_batch(batch=batch, until_ms=durable_until_ms)
        applied += count
        if count < batch:
            return applied


# Answering a session is latency work; applying the log is throughput work. A follower runs
# at a lower CPU priority, so that on a busy machine sessions are answered first and the log
# catches up in the gaps (on the charging bench: p99 about 11 down to 8.5 ms, at the same rate).
FOLLOWER_NICENESS = 10
logger = logging.getLogger(__name__)


def log_follow(*, stop: Event, idle_seconds: float = 0.05, max_backoff_seconds: float = 30.0) -> int:
    """Applies the log as it grows until ``stop`` is set; returns how many entries it applied.
    For a process of its own (``manage.py quota_store follow``): it lowers that process's
    CPU priority for good (``FOLLOWER_NICENESS``).

    Redis or PostgreSQL going away does not end it: it waits, longer each time up to
    ``max_backoff_seconds``, and goes on from the position the database holds."""
    os.nice(FOLLOWER_NICENESS)
    applied, failures = 0, 0
    while not stop.is_set():
        try:
            count = log_apply()
        except (RedisError, DatabaseError, InterfaceError) as error:
            failures += 1
            wait = min(max_backoff_seconds, idle_seconds * 2**failures)
            logger.warning("quota log follower: %s; trying again in %.1f s", error, wait)
            connections.close_all()  # a broken connection is replaced on the next try
            stop.wait(wait)
            continue
        failures = 0
        applied += count
        if not count:
            stop.wait(idle_seconds)  # nothing waiting: look again shortly
    return applied


def log_pending() -> list[dict]:
    """The entries not applied yet."""
    position = QuotaLogPosition.objects.filter(name=store.prefix()).values_list("last_id", flat=True).first() or "0-0"
    return [orjson.loads(fields[b"e"]) for _, fields in store.client().xrange(store.log_key(), min=f"({position}")]


@transaction.atomic
def _apply_batch(*, batch: int, until_ms: int) -> int:
    position = quota_log_position_lock(name=store.prefix())
    entries = store.client().xrange(store.log_key(), min=f"({position.last_id}", max=str(until_ms), count=batch)
    if not entries:
        return 0
    parsed = [orjson.loads(fields[b"e"]) for _, fields in entries]
    try:
        with transaction.atomic():
            _apply(parsed)
    except (IntegrityError, DataError):
        _apply_one_by_one(ids=[entry_id.decode() for entry_id, _ in entries], entries=parsed)
    position.last_id = entries[-1][0].decode()
    position.save(update_fields=["last_id"])
    transaction.on_commit(partial(_trim, up_to=position.last_id))  # only what the database keeps
    return len(entries)


def log_apply_now(*, wait_seconds: float = 5.0) -> int:
    """Applies every entry written so far, waiting (a couple of seconds at most) for Redis to
    make the last ones durable: for a request that must find in the database what the store
    just did (a refund of an event, a report after a session expired)."""
    conn = store.client()
    seconds, micros = conn.time()
    written_ms = seconds * 1000 + micros // 1000
    deadline = time.monotonic() + wait_seconds
    while True:
        durable = store.durable_until_ms()
        if durable is not None and durable >= written_ms or time.monotonic() > deadline:
            return log_apply(durable_until_ms=durable)
        time.sleep(0.05)


def _apply_one_by_one(*, ids: list[str], entries: list[dict]) -> None:
    """A batch the database refused: each entry on its own, and those it refuses set aside
    with the error, so one bad entry does not hold up the log for good."""
    for entry_id, entry in zip(ids, entries, strict=True):
        try:
            with transaction.atomic():
                _apply([entry])
        except (IntegrityError, DataError) as error:
            logger.error("quota log entry %s set aside: %s", entry_id, error)
            QuotaLogSetAside.objects.get_or_create(entry_id=entry_id, defaults={"entry": entry, "error": str(error)})


def _trim(*, up_to: str) -> None:
    """Drops the applied entries from the stream (those up to and with ``up_to``)."""
    milliseconds, sequence = up_to.split("-")
    store.client().xtrim(store.log_key(), minid=f"{milliseconds}-{int(sequence) + 1}", approximate=False)


def _apply(entries: list[dict]) -> None:
    metas = [orjson.loads(entry["meta"]) for entry in entries]
    bucket_takes: dict[int, int] = defaultdict(int)
    limit_ids: set[int] = set()
    for entry in entries:
        for key, units in entry["takes"] or ():
            bucket_takes[store.counter_of(key)[1]] += int(units)
        limit_ids.update(store.counter_of(key)[1] for key, _ in entry["limits"] or ())
    now = timezone.now()
    limits = {limit.pk: limit for limit in node_limits_lock(nodes_by_unit={}, limit_ids=limit_ids, as_rows=True)}
    limit_periods_roll(limits=list(limits.values()), at=now)
    buckets = buckets_lock_by_id(bucket_ids=set(bucket_takes))

    ledger, ended, events = [], [], []
    for entry, meta in zip(entries, metas, strict=True):
        at = datetime.fromisoformat(entry["at"])
        reference = meta["reference"]
        reason = USAGE_REASON[meta["service"]]
        for key, units in entry["takes"] or ():
            bucket, units = buckets[store.counter_of(key)[1]], int(units)
            bucket.remaining -= units
            bucket.reserved -= units
            bucket.in_store -= units
            ledger.append(
                bucket_entry(
                    bucket=bucket, kind=LedgerEntry.Kind.USAGE, units=-units, reason=reason, at=at, reference=reference
                )
            )
        for key, units in entry["limits"] or ():
            limit, units = limits[store.counter_of(key)[1]], int(units)
            limit.reserved -= units
            limit.in_store -= units
            limit_count(limit, units=units, at=at)
        if entry["status"] in ("terminated", "expired"):
            ended.append((entry, meta, at))
        if entry["op"] == "event":  # its answer is what a refund finds the charge by
            events.append((meta["reference"], "event", orjson.loads(entry["answer"]), ANSWER_STATUS["event"], at))

    rows_update(NodeLimit, list(limits.values()), ["used", "reserved", "in_store"])
    rows_update(Bucket, list(buckets.values()), ["remaining", "reserved", "in_store"])
    ledger_write(ledger)
    rows_insert(ChargingRequest, ["key", "kind", "answer", "status_code", "created_at"], events, skip_conflicts=True)
    _sessions_record(ended)
    thresholds_check(buckets=buckets.values(), limits=limits.values(), at=now)
    live.changed_on_commit(
        line_ids={meta["line"] for meta in metas}, node_ids={node for meta in metas for node in meta["nodes"]}
    )


def _sessions_record(ended: list[tuple[dict, dict, datetime]]) -> None:
    """The store's ended sessions, as the database path would have left them; an expired one
    with the grant it lost, so a late report is charged up to it."""
    if not ended:
        return
    rows_insert(
        ChargingSession,
        SESSION_FIELDS,
        [
            (
                meta["source"],
                meta["session_id"],
                meta["line"],
                meta["service"],
                meta["zone"],
                entry["status"],
                int(entry["number"]),
                int(entry["total"]),
                0,
                datetime.fromisoformat(meta["opened_at"]),
                at,
            )
            for entry, meta, at in ended
        ],
        skip_conflicts=True,
    )
    lost = [(entry, meta, at) for entry, meta, at in ended if entry["status"] == "expired" and int(entry["granted"])]
    if not lost:
        return
    sessions = {
        (row.source, row.session_id): row
        for row in ChargingSession.objects.filter(
            session_id__in={meta["session_id"] for _, meta, _ in lost},
            source__in={meta["source"] for _, meta, _ in lost},
        )
    }
    Reservation.objects.bulk_create(
        Reservation(
            session=sessions[(meta["source"], meta["session_id"])],
            units=int(entry["granted"]),
            granted_at=datetime.fromisoformat(entry["granted_at"]) if entry["granted_at"] else at,
            expires_at=at,
            status=Reservation.Status.EXPIRED,
        )
        for entry, meta, at in lost
    )
