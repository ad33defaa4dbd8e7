"""Handing slices of buckets and limits to the quota store, and taking them back.

A slice is part of its row's ``reserved``, counted in ``in_store``: the store grants sessions
only out of its slices, so the database never promises a unit twice. A slice moves from the
database to the store in two steps: first the database reserves it (committed), then the
store's counter grows. A crash in between leaves units reserved for nobody (an under-grant
until an operator frees them); the other order could grant a unit twice. Taking slices back
runs the other way for the same reason: out of the store, then the database.
"""

import json
import math
from collections import defaultdict
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from charging.locks import buckets_lock_by_id, node_limits_lock
from charging.models import Bucket, NodeLimit
from charging.periods import limit_periods_roll
from charging.quota import store
from charging.quota.log import log_pending
from portal.db.rows import rows_update

COUNTERS = ["reserved", "in_store"]


def slice_share() -> float:
    """What part of a counter's headroom one slice takes: a larger share means fewer trips to
    the database, a smaller one leaves more to the paths that charge it directly."""
    return float(getattr(settings, "CHARGING_QUOTA_SHARE", 0.25))


def slices_take(*, counters: list[str], wanted: int, at: datetime | None = None) -> dict[str, int]:
    """Hands each counter a slice of at least ``wanted`` units (its share of the headroom if
    more), as far as the database has them; returns the units added per counter. The store's
    counters grow once the reservation is committed (at once, outside a transaction)."""
    at = at or timezone.now()
    with transaction.atomic():
        added = _reserve(counters=counters, wanted=wanted, at=at)
        transaction.on_commit(partial(_store_add, counters=counters, added=added))
    return added


def _store_add(*, counters: list[str], added: dict[str, int]) -> None:
    with store.client().pipeline(transaction=False) as pipe:
        for key in counters:
            if added.get(key):
                pipe.incrby(key, added[key])
            elif store.counter_of(key)[0] == store.BUCKET:
                # Sessions short of this allowance go to the database path, which sees every
                # unit there is; a limit is never marked, as its last grant would end a session.
                pipe.set(store.dry_key(key), 1, px=500)
        pipe.execute()


def short_refill(*, counters: list[bytes], wanted: int, at: datetime) -> bool:
    """Refills the counters a step found short, but for allowances the database was just
    found out of; True if none was asked for (the next step grants what there is)."""
    keys = [counter.decode() for counter in counters]
    dry = store.client().mget([store.dry_key(key) for key in keys])
    asked = [key for key, flag in zip(keys, dry, strict=True) if flag is None]
    if asked:
        slices_take(counters=asked, wanted=wanted, at=at)
    return not asked


def _reserve(*, counters: list[str], wanted: int, at: datetime) -> dict[str, int]:
    limits, buckets = _lock(counters)
    limit_periods_roll(limits=limits, at=at)
    added: dict[str, int] = {}
    for limit in limits:
        take = _slice(headroom=limit.headroom, wanted=wanted)
        added[store.counter_key(store.LIMIT, limit.pk)] = take
        limit.reserved += take
        limit.in_store += take
    for bucket in buckets:
        take = _slice(headroom=bucket.available if bucket.is_valid_at(at) else 0, wanted=wanted)
        added[store.counter_key(store.BUCKET, bucket.pk)] = take
        bucket.reserved += take
        bucket.in_store += take
    rows_update(NodeLimit, limits, COUNTERS)
    rows_update(Bucket, buckets, COUNTERS)
    return added


def _slice(*, headroom: int, wanted: int) -> int:
    if headroom <= 0:
        return 0
    return min(headroom, max(wanted, math.ceil(headroom * slice_share())))


def _lock(counters) -> tuple[list[NodeLimit], list[Bucket]]:
    """The rows of these counters, locked in the global order."""
    ids: dict[str, set[int]] = {store.LIMIT: set(), store.BUCKET: set()}
    for key in counters:
        kind, pk = store.counter_of(key)
        ids[kind].add(pk)
    limits = node_limits_lock(nodes_by_unit={}, limit_ids=ids[store.LIMIT])
    return limits, list(buckets_lock_by_id(bucket_ids=ids[store.BUCKET]).values())


def slices_return(*, counters: list[str] | None = None) -> dict[str, int]:
    """Takes the free part of slices back to the database (all slices if none are named):
    what no session holds becomes available to every path again. Returns the units per counter."""
    if counters is None:
        counters = slice_counters()
    if not counters:
        return {}
    drained = store.slices_drain(keys=counters, args=[])
    returned = {key: int(units) for key, units in zip(counters, drained, strict=True) if int(units)}
    if returned:
        _unreserve(returned)
    return returned


def slices_of_lapsed_allowances(*, now: datetime | None = None) -> list[str]:
    """Counters of allowances that ended while the store held a slice of them: no session
    may draw on them any more, so what is free goes back (the rest as its sessions settle)."""
    lapsed = Bucket.objects.filter(in_store__gt=0, valid_until__lte=now or timezone.now())
    return [store.counter_key(store.BUCKET, pk) for pk in lapsed.values_list("pk", flat=True)]


def slice_counters() -> list[str]:
    """The counters that hold a slice."""
    return [
        store.counter_key(store.BUCKET, pk) for pk in Bucket.objects.filter(in_store__gt=0).values_list("pk", flat=True)
    ] + [
        store.counter_key(store.LIMIT, pk)
        for pk in NodeLimit.objects.filter(in_store__gt=0).values_list("pk", flat=True)
    ]


@transaction.atomic
def _unreserve(returned: dict[str, int]) -> None:
    limits, buckets = _lock(returned)
    for row, kind in [*((limit, store.LIMIT) for limit in limits), *((bucket, store.BUCKET) for bucket in buckets)]:
        units = returned[store.counter_key(kind, row.pk)]
        row.reserved -= units
        row.in_store -= units
    rows_update(NodeLimit, limits, COUNTERS)
    rows_update(Bucket, buckets, COUNTERS)


def slices_reclaim_locked(rows: list[NodeLimit | Bucket]) -> None:
    """Calls back the free part of the slices of limits and buckets the caller has locked,
    and lowers their ``reserved`` and ``in_store`` in memory (the caller writes the rows
    back). If the caller's transaction rolls back, those units stay reserved for nobody: an
    under-grant, never a double one."""
    by_key = {
        store.counter_key(store.LIMIT if isinstance(row, NodeLimit) else store.BUCKET, row.pk): row for row in rows
    }
    counters = list(by_key)
    drained = store.slices_drain(keys=counters, args=[])
    for key, units in zip(counters, drained, strict=True):
        by_key[key].reserved -= int(units)
        by_key[key].in_store -= int(units)


def slices_warm(*, bucket_ids: set[int], limit_ids: set[int], wanted: int = 1) -> int:
    """Hands slices of many counters to the store at once (say, a company's pools and limits
    when the engine starts), so first requests do not each ask the database. Returns how many."""
    counters = [store.counter_key(store.BUCKET, pk) for pk in sorted(bucket_ids)]
    counters += [store.counter_key(store.LIMIT, pk) for pk in sorted(limit_ids)]
    added = {}
    for start in range(0, len(counters), 5000):
        added.update(slices_take(counters=counters[start : start + 5000], wanted=wanted))
    return sum(1 for units in added.values() if units)


def slices_in_store(counters: list[str]) -> dict[str, int]:
    values = store.client().mget(counters) if counters else []
    return {key: int(value or 0) for key, value in zip(counters, values, strict=True)}


def slices_mismatches() -> list[str]:
    """Counters whose slice in the database is not what the store accounts for: its free
    units, what open sessions hold, and what the log has settled but not yet applied. Read
    while the store is quiet (nothing in flight), or the figures move under it."""
    return [
        f"{key}: {in_database} in the database's slice, {in_store} in the store"
        for key, (in_database, in_store) in _slices_compared().items()
        if in_database != in_store
    ]


def slices_repair() -> dict[str, int]:
    """Frees what slices hold in the database beyond what the store accounts for (units a
    crash between a refill's commit and the store's increment left reserved for nobody); run
    while the store is quiet. The other way round (the store holding more than the database
    gave it) cannot be mended here: ``slices_mismatches`` reports it. Returns the units freed."""
    lost = {key: db - kept for key, (db, kept) in _slices_compared().items() if db > kept}
    if lost:
        _unreserve(lost)
    return lost


def _slices_compared() -> dict[str, tuple[int, int]]:
    """Per counter holding a slice: (units in the database's slice, units the store accounts for)."""
    conn = store.client()
    expected: dict[str, int] = defaultdict(int)
    for key in conn.scan_iter(match=f"{store.prefix()}:s:*", count=1000):
        status, granted, holds, limits = conn.hmget(key, "status", "granted", "holds", "limits")
        if status != b"open":
            continue
        for counter, units in json.loads(holds) or ():
            expected[counter] += int(units)
        for counter in json.loads(limits) or ():
            expected[counter] += int(granted)
    for entry in log_pending():
        for counter, units in [*(entry["takes"] or ()), *(entry["limits"] or ())]:
            expected[counter] += int(units)
    in_database = {
        store.counter_key(store.BUCKET, pk): units
        for pk, units in Bucket.objects.filter(in_store__gt=0).values_list("pk", "in_store")
    }
    in_database.update(
        (store.counter_key(store.LIMIT, pk), units)
        for pk, units in NodeLimit.objects.filter(in_store__gt=0).values_list("pk", "in_store")
    )
    counters = sorted({*in_database, *expected})
    for key, free in slices_in_store(counters).items():
        expected[key] += free
    return {key: (in_database.get(key, 0), expected[key]) for key in counters}
