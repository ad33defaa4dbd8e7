"""Charging a batch of usage records before locking the rows its lines share.

Batches of different lines still share their cost centres' limits and the company's pools.
Locked for the whole of a batch, those rows would let only one worker charge at a time. So a
batch is first charged on the shared rows *as read*: its records are locked and marked charged
as covered (``batch_events_mark_covered``), its lines' own limits are locked, every record is
decided and everything else that is the batch's own is written (its lines' limits, its ledger
entries). Only then are the shared rows locked, checked that each decision still stands on
their current values, and moved by what the batch drew: a worker holds them for the batch's
last few statements, not for the whole batch.

The decisions are the allowance shortcut's (``AllowanceShortcut``): a record covered whole by
the first allowance on its path that has units left. They stand when every allowance the batch
drew on still has what it drew (one it drew dry: exactly what it had), every allowance it
passed over as empty is still empty, every limit whose policy is not to block still has room
for what the batch counts on it, and no period, validity or policy changed. If any record
needs the full plan (money, an allowance running short, a soft limit reached) or a check
fails, ``SharedRowsMoved`` is raised: the caller rolls the attempt back and charges the batch
with every row locked from the start.
"""

from datetime import datetime
from operator import attrgetter

from charging.batch_charging import AllowanceShortcut, BatchEvent, BatchPosting
from charging.context import LinePath
from charging.grants import Locked, limit_periods_roll, usable_buckets
from charging.locks import LimitRow, NodeLimitsLock, buckets_lock_by_id
from charging.models import Bucket, NodeLimit
from charging.periods import period_start
from charging.row_updates import rows_update
from charging.thresholds import thresholds_check
from charging.units import SERVICE_UNIT


class SharedRowsMoved(Exception):
    """A decision taken on the shared rows as read may not stand: charge with them locked."""


def batch_charge_shared_last(
    *, events: list[BatchEvent], paths: dict[int, LinePath], queued: list[int], now: datetime
) -> None:
    """Charges the batch's records, already marked charged as covered by the allowances
    (``batch_events_mark_covered``), the shared rows locked last (see the module's docstring).
    ``paths``: the lines' paths in the cost-centre tree, by line (a line outside any company
    has none); ``queued``: the keys the batch was queued with. It needs no tariff: a record it
    charges is covered by an allowance, and one it cannot charge so sends the batch the full
    way. Raises ``SharedRowsMoved`` when that cannot be done; the caller rolls back what was
    written."""
    if any(path.personal_account_id is not None for path in paths.values()):
        raise SharedRowsMoved("a line may be steered to a personal account: its payer is decided per record")
    first = min(e.occurred_at for e in events)
    locked, own_limit_ids = _lines_own_locked(events=events, paths=paths, at=now, first=first)
    shortcuts: dict[tuple[int, str], AllowanceShortcut] = {}
    posting = BatchPosting(events, queued=queued)
    for event in sorted(events, key=attrgetter("occurred_at", "pk")):
        key = (event.line_id, event.service)
        shortcut = shortcuts.get(key)
        if shortcut is None:
            path = paths.get(event.line_id)
            shortcut = shortcuts[key] = AllowanceShortcut(
                line_id=event.line_id,
                path_ids=path.node_ids if path else [],
                service=event.service,
                at=first,
                locked=locked,
            )
        if not shortcut.charge(event, posting):
            raise SharedRowsMoved(f"record {event.pk} needs the full plan")
    last = max(e.occurred_at for e in events)
    own_limits = [limit for limit in locked.limits if limit.pk in own_limit_ids]
    counted = [limit for limit in own_limits if limit.used != locked.as_read[("limit", limit.pk)][0]]
    rows_update(NodeLimit, counted, ["used"])
    posting.save()
    # A notice of a line's own limit is only ever written under that limit's lock, held here.
    thresholds_check(buckets=(), limits=own_limits, at=last)

    limits, buckets = _shared_rows_settle(locked=locked, own_limit_ids=own_limit_ids)
    thresholds_check(buckets=buckets, limits=limits, at=last)


def _lines_own_locked(
    *, events: list[BatchEvent], paths: dict[int, LinePath], at: datetime, first: datetime
) -> tuple[Locked, set[int]]:
    """The lines' own limits locked (and rolled to the current period); the shared limits and
    the allowances only read. Returns them as one ``Locked`` (its ``as_read``: what was read),
    and the keys of the limits locked. Limits are read as ``LimitRow`` values."""
    nodes_by_unit: dict[str, set[int]] = {}
    for line_id, service in {(e.line_id, e.service) for e in events}:
        path = paths.get(line_id)
        nodes_by_unit.setdefault(SERVICE_UNIT[service], set()).update(path.node_ids if path else ())
    own_node_ids = {path.node_ids[-1] for path in paths.values()}
    limits_lock = NodeLimitsLock(nodes_by_unit=nodes_by_unit)
    own = limits_lock.lines_own(own_node_ids=own_node_ids, as_rows=True)
    limit_periods_roll(limits=own, at=at)
    shared = limits_lock.shared(own_node_ids=own_node_ids, lock=False, as_rows=True)
    starts: dict[str, datetime] = {}
    for limit in shared:
        if limit.period not in starts:
            starts[limit.period] = period_start(period=limit.period, at=at)
        if limit.period_start != starts[limit.period]:
            raise SharedRowsMoved(f"limit {limit.pk} starts a new period: it is rolled with its row locked")
    bucket_ids = usable_buckets(
        line_ids={e.line_id for e in events},
        node_ids={node for nodes in nodes_by_unit.values() for node in nodes},
        units=set(nodes_by_unit),
        at=first,
    )
    buckets = {b.pk: b for b in Bucket.objects.filter(pk__any=bucket_ids).order_by()}
    locked = Locked(limits=own + shared, buckets=buckets, money_accounts=set(), at=at)
    return locked, {limit.pk for limit in own}


def _shared_rows_settle(*, locked: Locked, own_limit_ids: set[int]) -> tuple[list[LimitRow], list[Bucket]]:
    """Locks the shared rows the batch read, in the global order; checks that its decisions
    stand on their current values; moves them by what the batch counted and drew. Returns
    the rows moved, as they are now."""
    shared = [limit for limit in locked.limits if limit.pk not in own_limit_ids]
    nodes_by_unit: dict[str, set[int]] = {}
    for limit in shared:
        nodes_by_unit.setdefault(limit.unit, set()).add(limit.node_id)
    current_limits = {
        limit.pk: limit
        for limit in NodeLimitsLock(nodes_by_unit=nodes_by_unit).shared(own_node_ids=set(), as_rows=True)
    }
    current_buckets = buckets_lock_by_id(bucket_ids=set(locked.buckets))

    moved_limits = []
    for limit in shared:
        current = current_limits.get(limit.pk)
        counted = limit.used - locked.as_read[("limit", limit.pk)][0]
        if current is None or (current.period_start, current.on_exceed) != (limit.period_start, limit.on_exceed):
            raise SharedRowsMoved(f"limit {limit.pk} changed its period or policy")
        if limit.on_exceed != NodeLimit.OnExceed.BLOCK and current.headroom < counted:
            raise SharedRowsMoved(f"limit {limit.pk} has no room left for the batch: its policy prices the excess")
        if counted:
            current.used += counted
            moved_limits.append(current)

    moved_buckets = []
    for bucket in locked.buckets.values():
        current = current_buckets.get(bucket.pk)
        remaining, reserved, _ = locked.as_read[("bucket", bucket.pk)]
        drawn = remaining - bucket.remaining
        if current is None or _draw_terms(current) != _draw_terms(bucket):
            raise SharedRowsMoved(f"allowance {bucket.pk} changed its validity or priority")
        as_read = remaining - reserved
        if drawn and bucket.available > 0:
            # Units left all through the batch: enough now for what it drew is all it needs.
            if current.available < drawn:
                raise SharedRowsMoved(f"allowance {bucket.pk} has not enough left for the batch")
        elif drawn:
            # Drawn dry, so later records passed it over: they stand if it had what it had.
            if current.available != as_read:
                raise SharedRowsMoved(f"allowance {bucket.pk}, drawn dry by the batch, changed meanwhile")
        elif as_read <= 0 < current.available:
            raise SharedRowsMoved(f"allowance {bucket.pk} was passed over as empty and has units now")
        if drawn:
            current.remaining -= drawn
            moved_buckets.append(current)

    rows_update(NodeLimit, moved_limits, ["used"])
    rows_update(Bucket, moved_buckets, ["remaining"])
    return moved_limits, moved_buckets


def _draw_terms(bucket: Bucket) -> tuple:
    """What decides whether and when a record draws on an allowance, besides what it has left."""
    return bucket.valid_from, bucket.valid_until, bucket.priority, bucket.unit, bucket.line_id, bucket.cost_centre_id
