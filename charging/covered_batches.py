"""Charging a batch of usage records its allowances cover, locking the rows lines share last.

Batches of different lines still share their cost centres' limits and the company's pools.
Locked for the whole of a batch, those rows would let only one worker charge at a time. So a
batch is first charged on the pools *as read*, and on its cost centres' limits unread: its
records are locked and marked charged as covered (``batch_events_mark_covered``), its lines'
own limits are locked, every record is decided, what it puts on each cost centre is counted
(``SharedCount``) and everything else that is the batch's own is written (its lines' limits,
its ledger entries). Only then are the shared rows locked, checked that each decision still
stands on their current values, and moved by what the batch counted and drew: a worker holds
them for the batch's last few statements, not for the whole batch.

The decisions are the allowance shortcut's (``AllowanceShortcut``): a record covered whole by
the first allowance on its path that has units left. They stand when every allowance the batch
drew on still has what it drew (one it drew dry: exactly what it had), every allowance it
passed over as empty is still empty, every limit whose policy is not to block has room for
all the batch counts on it (a record at a time, the same test), every limit counts from the
current period and from before the batch's first record, and no validity changed. If any record
needs the full plan (money, an allowance running short, a soft limit reached) or a check
fails, ``SharedRowsMoved`` is raised: the caller rolls the attempt back and charges the batch
with every row locked from the start.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter

from charging.allowances import bucket_draw_order, usable_buckets
from charging.batch_charging import AllowanceShortcut, BatchEvent, BatchPosting
from charging.context import LinePath
from charging.locks import LimitRow, Locked, NodeLimitsLock, buckets_lock_by_id
from charging.models import Bucket, NodeLimit
from charging.periods import limit_periods_roll, period_start
from charging.thresholds import thresholds_check
from charging.units import SERVICE_UNIT
from portal.db.rows import rows_update


class SharedRowsMoved(Exception):
    """A decision taken on the shared rows as read may not stand: charge with them locked."""


def covered_batch_charge(
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
    locked = _lines_own_locked(events=events, paths=paths, at=now, first=first)
    shortcuts = _Shortcuts(locked=locked, paths=paths, at=first)
    posting = BatchPosting(events, queued=queued)
    for event in sorted(events, key=attrgetter("occurred_at", "pk")):
        if not shortcuts.of(event.line_id, event.service).charge(event, posting):
            raise SharedRowsMoved(f"record {event.pk} needs the full plan")
    last = max(e.occurred_at for e in events)
    counted = [limit for limit in locked.limits if limit.used != locked.as_read[("limit", limit.pk)][0]]
    rows_update(NodeLimit, counted, ["used"])
    posting.save()
    # A notice of a line's own limit is only ever written under that limit's lock, held here.
    thresholds_check(buckets=(), limits=locked.limits, at=last)

    limits, buckets = _shared_rows_settle(locked=locked, counts=shortcuts.counts, first=first, at=now)
    thresholds_check(buckets=buckets, limits=limits, at=last)


def _lines_own_locked(*, events: list[BatchEvent], paths: dict[int, LinePath], at: datetime, first: datetime) -> Locked:
    """The lines' own limits locked (and rolled to the current period), the allowances on
    their paths only read, as one ``Locked`` (its ``as_read``: what was read). The cost
    centres' limits are not read yet: the batch counts what it puts on them
    (``SharedCount``), and they are read when they are locked, last. Limits are read as
    ``LimitRow`` values."""
    nodes_by_unit: dict[str, set[int]] = {}
    for line_id, service in {(e.line_id, e.service) for e in events}:
        path = paths.get(line_id)
        nodes_by_unit.setdefault(SERVICE_UNIT[service], set()).update(path.node_ids if path else ())
    own_node_ids = {path.node_ids[-1] for path in paths.values()}
    own = NodeLimitsLock(nodes_by_unit=nodes_by_unit).lines_own(own_node_ids=own_node_ids, as_rows=True)
    limit_periods_roll(limits=own, at=at)
    bucket_ids = usable_buckets(
        line_ids={e.line_id for e in events},
        node_ids={node for nodes in nodes_by_unit.values() for node in nodes},
        units=set(nodes_by_unit),
        at=first,
    )
    buckets = {b.pk: b for b in Bucket.objects.filter(pk__any=bucket_ids).order_by()}
    return Locked(limits=own, buckets=buckets, money_accounts=set(), at=at)


# Before every record's time: what the batch counts on a cost centre's limit counts each of its
# records. The limit's own start is checked when it is locked (``_shared_rows_settle``).
_EVER = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class SharedCount:
    """What a batch counts on the limit of a cost centre (if it has one) before reading it: the
    units of the batch's records below that node. To the allowance shortcut it is one more
    blocking limit on the path, from the start of time; whether the real one lets the batch's
    decisions stand (its policy, its period) is checked when it is locked."""

    node_id: int
    unit: str
    used: int = 0
    period_start: datetime = _EVER
    on_exceed: str = NodeLimit.OnExceed.BLOCK


class _Shortcuts:
    """The batch's allowance shortcuts, one per line and service. Lines under the same cost
    centre share what lies above them (the counts on their cost centres' limits, the pools on
    their path): that is looked up once, not once per line."""

    def __init__(self, *, locked: Locked, paths: dict[int, LinePath], at: datetime):
        self.locked, self.paths, self.at = locked, paths, at
        self.counts: dict[tuple[int, str], SharedCount] = {}  # by (node, unit)
        self._above: dict[tuple[tuple[int, ...], str], tuple[list[SharedCount], list[Bucket]]] = {}
        self._made: dict[tuple[int, str], AllowanceShortcut] = {}

    def of(self, line_id: int, service: str) -> AllowanceShortcut:
        shortcut = self._made.get((line_id, service))
        if shortcut is None:
            shortcut = self._made[(line_id, service)] = self._make(line_id, service)
        return shortcut

    def _make(self, line_id: int, service: str) -> AllowanceShortcut:
        unit = SERVICE_UNIT[service]
        path = self.paths.get(line_id)
        above, own_node = (tuple(path.node_ids[:-1]), path.node_ids[-1]) if path else ((), None)
        counts, pools = self._shared(above, unit)
        holders = self.locked.buckets_by_holder()
        own_buckets = [
            bucket
            for bucket in [*holders.get(("line", line_id), ()), *holders.get(("node", own_node), ())]
            if bucket.unit == unit
        ]
        buckets = sorted(own_buckets + pools, key=bucket_draw_order(self.at)) if own_buckets else pools
        own_limits = [limit for limit in self.locked.limits_by_node.get(own_node, ()) if limit.unit == unit]
        return AllowanceShortcut(limits=[*counts, *own_limits], buckets=buckets, service=service)

    def _shared(self, above: tuple[int, ...], unit: str) -> tuple[list[SharedCount], list[Bucket]]:
        """The counts on the limits of the cost centres ``above`` a line, and their pools."""
        shared = self._above.get((above, unit))
        if shared is None:
            counts = [self.counts.setdefault((node, unit), SharedCount(node, unit)) for node in above]
            holders = self.locked.buckets_by_holder()
            pools = [bucket for node in above for bucket in holders.get(("node", node), ()) if bucket.unit == unit]
            shared = self._above[(above, unit)] = (counts, sorted(pools, key=bucket_draw_order(self.at)))
        return shared


def _shared_rows_settle(
    *, locked: Locked, counts: dict[tuple[int, str], SharedCount], first: datetime, at: datetime
) -> tuple[list[LimitRow], list[Bucket]]:
    """Locks the shared rows the batch counted on or drew from, in the global order; checks
    that its decisions stand on their current values; moves them by what the batch counted and
    drew. Returns the rows moved, as they are now."""
    nodes_by_unit: dict[str, set[int]] = {}
    for (node_id, unit), count in counts.items():
        if count.used:
            nodes_by_unit.setdefault(unit, set()).add(node_id)
    current_limits = NodeLimitsLock(nodes_by_unit=nodes_by_unit).shared(own_node_ids=set(), as_rows=True)
    current_buckets = buckets_lock_by_id(bucket_ids=set(locked.buckets))

    moved_limits = []
    starts: dict[str, datetime] = {}
    for limit in current_limits:
        counted = counts[(limit.node_id, limit.unit)].used
        if limit.period not in starts:
            starts[limit.period] = period_start(period=limit.period, at=at)
        if limit.period_start != starts[limit.period]:
            raise SharedRowsMoved(f"limit {limit.pk} starts a new period: it is rolled with its row locked")
        if first < limit.period_start:
            raise SharedRowsMoved(f"limit {limit.pk} counts from after the batch's first record")
        if limit.on_exceed != NodeLimit.OnExceed.BLOCK and limit.headroom < counted:
            raise SharedRowsMoved(f"limit {limit.pk} has no room left for the batch: its policy prices the excess")
        limit.used += counted
        moved_limits.append(limit)

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
