"""Handing slices of buckets and limits to the quota store, and taking them back.

A slice moves from the database to the store in two steps: first the database reserves it
(committed), then the store's counter grows. A crash in between leaves units reserved that
nobody grants (an under-grant until an operator frees them); the other order could grant a
unit twice.
Taking slices back runs the other way for the same reason: out of the store, then the
database.
"""

import math
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from charging.grants import limit_periods_roll
from charging.locks import buckets_lock_by_id, node_limits_lock
from charging.models import Bucket, NodeLimit, QuotaSlice
from charging.quota import store
from charging.row_updates import rows_update


def slice_share() -> float:
    """What part of a counter's headroom one slice takes: a larger share means fewer trips to
    the database, a smaller one leaves more to the paths that charge it directly."""
    return float(getattr(settings, "CHARGING_QUOTA_SHARE", 0.25))


def slices_take(*, counters: list[str], wanted: int, at: datetime | None = None) -> dict[str, int]:
    """Hands each counter a slice of at least ``wanted`` units (its share of the headroom if
    more), as far as the database has them; returns the units added per counter."""
    at = at or timezone.now()
    added = _reserve(counters=counters, wanted=wanted, at=at)
    conn = store.client()
    with conn.pipeline(transaction=False) as pipe:
        for key in counters:
            if added.get(key):
                pipe.incrby(key, added[key])
            else:
                pipe.set(store.dry_key(key), 1, px=500)
        pipe.execute()
    return added


@transaction.atomic
def _reserve(*, counters: list[str], wanted: int, at: datetime) -> dict[str, int]:
    ids = {store.LIMIT: set(), store.BUCKET: set()}
    for key in counters:
        kind, pk = store.counter_of(key)
        ids[kind].add(pk)
    limits = node_limits_lock(nodes_by_unit={}, limit_ids=ids[store.LIMIT])
    limit_periods_roll(limits=limits, at=at)
    buckets = buckets_lock_by_id(bucket_ids=ids[store.BUCKET])
    added: dict[str, int] = {}
    for limit in limits:
        added[store.counter_key(store.LIMIT, limit.pk)] = take = _slice(headroom=limit.headroom, wanted=wanted)
        limit.reserved += take
    for bucket in buckets.values():
        headroom = bucket.available if bucket.is_valid_at(at) else 0
        added[store.counter_key(store.BUCKET, bucket.pk)] = take = _slice(headroom=headroom, wanted=wanted)
        bucket.reserved += take
    rows_update(NodeLimit, limits, ["reserved"])
    rows_update(Bucket, list(buckets.values()), ["reserved"])
    slices_add_locked(added)
    return added


def _slice(*, headroom: int, wanted: int) -> int:
    if headroom <= 0:
        return 0
    return min(headroom, max(wanted, math.ceil(headroom * slice_share())))


def slices_add_locked(added: dict[str, int]) -> None:
    """Adds (or takes, if negative) units to the slice rows of counters locked by the caller."""
    moved = {store.counter_of(key): units for key, units in added.items() if units}
    if not moved:
        return
    by_bucket = {pk: units for (kind, pk), units in moved.items() if kind == store.BUCKET}
    by_limit = {pk: units for (kind, pk), units in moved.items() if kind == store.LIMIT}
    existing = {
        (store.BUCKET, row.bucket_id) if row.bucket_id else (store.LIMIT, row.limit_id): row
        for row in QuotaSlice.objects.filter(bucket_id__in=by_bucket).union(
            QuotaSlice.objects.filter(limit_id__in=by_limit), all=True
        )
    }
    new = []
    for (kind, pk), units in moved.items():
        row = existing.get((kind, pk))
        if row is None:
            new.append(QuotaSlice(units=units, **({"bucket_id": pk} if kind == store.BUCKET else {"limit_id": pk})))
        else:
            row.units += units
    QuotaSlice.objects.bulk_create(new)
    rows_update(QuotaSlice, list(existing.values()), ["units"])


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


def slice_counters() -> list[str]:
    """The counters that hold a slice."""
    rows = QuotaSlice.objects.filter(units__gt=0).values_list("bucket_id", "limit_id")
    return [
        store.counter_key(store.BUCKET, bucket_id) if bucket_id else store.counter_key(store.LIMIT, limit_id)
        for bucket_id, limit_id in rows
    ]


@transaction.atomic
def _unreserve(returned: dict[str, int]) -> None:
    ids = {store.LIMIT: set(), store.BUCKET: set()}
    for key in returned:
        kind, pk = store.counter_of(key)
        ids[kind].add(pk)
    limits = node_limits_lock(nodes_by_unit={}, limit_ids=ids[store.LIMIT])
    buckets = buckets_lock_by_id(bucket_ids=ids[store.BUCKET])
    for limit in limits:
        limit.reserved -= returned[store.counter_key(store.LIMIT, limit.pk)]
    for bucket in buckets.values():
        bucket.reserved -= returned[store.counter_key(store.BUCKET, bucket.pk)]
    rows_update(NodeLimit, limits, ["reserved"])
    rows_update(Bucket, list(buckets.values()), ["reserved"])
    slices_add_locked({key: -units for key, units in returned.items()})


def slices_reclaim_locked(*, limits: list[NodeLimit], buckets: dict[int, Bucket]) -> None:
    """Calls back the free part of the slices of rows the caller has locked, and lowers their
    ``reserved`` in memory (the caller writes the rows back). If the caller's transaction
    rolls back, those units stay reserved for nobody: an under-grant, never a double one."""
    keys = {store.counter_key(store.LIMIT, limit.pk): limit for limit in limits}
    keys.update((store.counter_key(store.BUCKET, bucket.pk), bucket) for bucket in buckets.values())
    held = QuotaSlice.objects.filter(units__gt=0).filter(
        Q(limit_id__in=[limit.pk for limit in limits]) | Q(bucket_id__in=list(buckets))
    )
    counters = [
        store.counter_key(store.BUCKET, b) if b else store.counter_key(store.LIMIT, lim)
        for b, lim in held.values_list("bucket_id", "limit_id")
    ]
    if not counters:
        return
    drained = store.slices_drain(keys=counters, args=[])
    returned = {key: int(units) for key, units in zip(counters, drained, strict=True) if int(units)}
    for key, units in returned.items():
        keys[key].reserved -= units
    slices_add_locked({key: -units for key, units in returned.items()})


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


def reserved_beyond_slices() -> list[str]:
    """Counters whose database reservation is less than their slice: must never happen."""
    wrong = []
    for row in QuotaSlice.objects.filter(units__gt=F("bucket__reserved")).exclude(bucket=None):
        wrong.append(f"bucket {row.bucket_id}: slice {row.units} over its reservation")
    for row in QuotaSlice.objects.filter(units__gt=F("limit__reserved")).exclude(limit=None):
        wrong.append(f"limit {row.limit_id}: slice {row.units} over its reservation")
    return wrong
