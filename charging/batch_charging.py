"""Charging a batch of offline usage records fast: the records read as plain values, a shortcut
for the common record, and the ledger posted per balance, not per record.

Most records are covered whole by one allowance: for them the full plan (``plan_grant``)
decides nothing that plain integer arithmetic on the locked rows does not, so
``AllowanceShortcut`` does that arithmetic instead. Any other record (money needed, an
allowance running out, a limit whose policy prices the excess, a line whose payer a steering
rule may change) takes the full plan, on the same locked rows, in the same order.

``BatchPosting`` sums what the batch's records drew into one usage entry per balance and day:
each record keeps what it drew (``units_from_buckets``, ``amount_charged``) and names those
entries (``ledger_reference``), so every unit is still traced from the balance to its record.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter

from django.db import connection
from django.db.models import F
from django.utils import timezone

from charging.allowances import buckets_of_line
from charging.context import ChargingContext
from charging.grants import limits_on_path
from charging.ledger import Entry, Kind, ledger_write
from charging.locks import Locked, usage_events_lock_values
from charging.models import Bucket, NodeLimit, UsageEvent
from charging.periods import limit_count
from charging.units import SERVICE_UNIT, USAGE_REASON
from portal.db.lookups import array_literal
from portal.db.rows import rows_update

_NO_MONEY = Decimal(0)
# A plain string, looked up per line of a batch (an enum member's lookup costs several times more).
_BLOCK = NodeLimit.OnExceed.BLOCK.value


@dataclass(slots=True)
class BatchEvent:
    """A received usage record of a batch, and what charging it decided."""

    pk: int
    external_id: str
    line_id: int
    service: str
    zone: str
    quantity: int
    occurred_at: datetime
    status: str = UsageEvent.Status.RECEIVED
    units_from_buckets: int = 0
    amount_charged: Decimal = _NO_MONEY
    charged_at: datetime | None = None
    ledger_reference: str = ""

    @property
    def reference(self) -> str:
        return f"usage:{self.external_id}"


_READ = ("pk", "external_id", "line_id", "service", "zone", "quantity", "occurred_at")
_WRITTEN = ["status", "units_from_buckets", "amount_charged", "charged_at", "ledger_reference"]


def batch_events_lock(*, event_ids: list[int]) -> list[BatchEvent]:
    """The batch's records still to charge, locked, as plain values (no model instances)."""
    return [BatchEvent(*values) for values in usage_events_lock_values(event_ids=event_ids, fields=_READ)]


def batch_events_mark_covered(*, event_ids: list[int], now: datetime) -> list[BatchEvent]:
    """Locks the batch's records still to charge and marks them charged, each covered whole by
    the allowances, in one statement: what the shared-last lane finds for nearly every record,
    written as the rows are locked rather than in a second pass over them. The lane checks
    it record by record and rolls it back if one is not covered."""
    reference = batch_reference(event_ids)
    charged = UsageEvent.Status.CHARGED
    if connection.vendor == "postgresql":
        events = _events_mark_covered_returning(event_ids=event_ids, now=now, reference=reference)
    else:  # SQLite: lock (its transactions serialise writers), then write
        events = batch_events_lock(event_ids=event_ids)
    for event in events:
        event.status, event.charged_at = charged, now
        event.units_from_buckets = event.quantity
        event.ledger_reference = reference or event.reference
    if connection.vendor != "postgresql":
        batch_events_save(events)
    return events


def _events_mark_covered_returning(*, event_ids: list[int], now: datetime, reference: str | None) -> list[BatchEvent]:
    """PostgreSQL: the marking statement, returning what the records hold, by ascending key."""
    meta = UsageEvent._meta
    table = connection.ops.quote_name(meta.db_table)
    fields = {name: meta.pk if name == "pk" else meta.get_field(name) for name in [*_READ, *_WRITTEN]}
    column = {name: connection.ops.quote_name(field.column) for name, field in fields.items()}
    ids, array_type = array_literal(event_ids)
    returned = ", ".join(column[name] for name in _READ)
    # Only quoted names from the model's metadata are formatted into the statement.
    sql = (
        f"UPDATE {table} SET {column['status']} = %s, {column['units_from_buckets']} = {column['quantity']},"  # noqa: S608
        f" {column['amount_charged']} = %s, {column['charged_at']} = %s,"
        f" {column['ledger_reference']} = COALESCE(%s, 'usage:' || {column['external_id']})"
        f" WHERE {column['pk']} = ANY(%s::{array_type}) AND {column['status']} = %s RETURNING {returned}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [UsageEvent.Status.CHARGED, _NO_MONEY, now, reference, ids, UsageEvent.Status.RECEIVED])
        rows = cursor.fetchall()
    return sorted((BatchEvent(*values) for values in rows), key=attrgetter("pk"))


def batch_reference(event_ids: list[int]) -> str | None:
    """What a batch's usage entries are referenced by: the batch, named by the first record it
    was queued with; ``None`` for a batch of one record, whose entries reference the record."""
    return f"usage-batch:{min(event_ids)}" if len(event_ids) > 1 else None


def batch_events_save(events: list[BatchEvent]) -> None:
    """Marks the batch's records charged. Those the allowances covered whole, nearly all, need
    no values of their own: one statement sets them from their own quantity."""
    covered: dict[tuple, list[int]] = {}  # what they share -> their keys
    others = []
    for event in events:
        if event.units_from_buckets == event.quantity and not event.amount_charged:
            covered.setdefault((event.status, event.charged_at, event.ledger_reference), []).append(event.pk)
        else:
            others.append(event)
    for (status, charged_at, reference), pks in covered.items():
        UsageEvent.objects.filter(pk__any=pks).update(
            status=status,
            units_from_buckets=F("quantity"),
            amount_charged=_NO_MONEY,
            charged_at=charged_at,
            ledger_reference=reference,
        )
    rows_update(UsageEvent, others, _WRITTEN)


class AllowanceShortcut:
    """Charges a record of one line and service that one allowance covers whole, with no money
    and no limit policy involved: the allowance moves, every limit on the path counts it, and
    the batch's posting counts the draw. ``charge`` says ``False`` (and changes nothing) for
    any other record.

    ``limits``: those on the line's path, of the service's unit, root first; ``buckets``: the
    allowances it may draw on, in draw order (``buckets_of_line``, at the batch's first record)."""

    def __init__(self, *, limits: list, buckets: list[Bucket], service: str, enabled: bool = True):
        self.enabled = enabled
        self.limits = limits
        self.soft = [limit for limit in limits if limit.on_exceed != _BLOCK]
        self.buckets = buckets
        self.reason = USAGE_REASON[service]

    @classmethod
    def of_context(cls, *, ctx: ChargingContext, locked: Locked) -> "AllowanceShortcut":
        unit = SERVICE_UNIT[ctx.service]
        return cls(
            limits=limits_on_path(locked=locked, path_ids=ctx.path_ids, unit=unit),
            # Which allowances a record may draw on depends on its time only through their validity.
            buckets=buckets_of_line(
                holders=locked.buckets_by_holder(), line_id=ctx.line.pk, path_ids=ctx.path_ids, unit=unit, at=ctx.at
            ),
            service=ctx.service,
            # A line that may be steered to a personal account is charged the full way: its
            # payer depends on each record's time.
            enabled=ctx.personal_account_id is None,
        )

    def charge(self, event: BatchEvent, posting: "BatchPosting") -> bool:
        if not self.enabled:
            return False
        used, at = event.quantity, event.occurred_at
        # Past a limit whose policy is not to block, the excess is priced: the full plan does that.
        for limit in self.soft:
            if limit.headroom < used:
                return False
        for bucket in self.buckets:  # the first with units left, valid when the record happened
            if bucket.available > 0 and bucket.is_valid_at(at):
                break
        else:
            return False
        if bucket.available < used:
            return False
        bucket.remaining -= used
        for limit in self.limits:
            limit_count(limit, units=used, at=at)
        posting.add(bucket.billing_account_id, bucket.pk, None, -used, _NO_MONEY, self.reason, at)
        event.units_from_buckets = used
        event.amount_charged = _NO_MONEY
        return True


class BatchPosting:
    """A batch's usage entries: one per balance, reason and (local) day the usage happened,
    dated by the day's last record. A batch of one record posts its own entries, tied to it."""

    def __init__(self, events: list[BatchEvent], *, queued: list[int]):
        """``queued``: the keys the batch was queued with (see ``batch_reference``)."""
        reference = batch_reference(queued)
        self.single = events[0] if reference is None else None
        self.reference = reference or self.single.reference
        self._totals: dict[tuple, list] = {}  # key -> [units, amount, last moment]
        self._days: dict[datetime, date] = {}  # the local day of each minute seen (zones differ by whole minutes)

    def add(
        self,
        account_id: int,
        bucket_id: int | None,
        balance_id: int | None,
        units: int,
        amount: Decimal,
        reason: str,
        at: datetime,
    ) -> None:
        minute = at.replace(second=0, microsecond=0)
        day = self._days.get(minute)
        if day is None:
            day = self._days[minute] = timezone.localtime(minute).date()
        key = (account_id, bucket_id, balance_id, reason, day)
        total = self._totals.get(key)
        if total is None:
            self._totals[key] = [units, amount, at]
        else:
            total[0] += units
            total[1] += amount
            total[2] = max(total[2], at)

    def add_entry(self, entry: Entry) -> None:
        """An entry the full plan settled (a usage charge of one balance)."""
        self.add(
            entry.billing_account_id,
            entry.bucket_id,
            entry.money_balance_id,
            entry.units,
            entry.amount,
            entry.reason,
            entry.created_at,
        )

    def save(self) -> None:
        """Writes the entries in one statement."""
        event_id = self.single.pk if self.single else None
        ledger_write(
            Entry(account, Kind.USAGE, bucket, balance, units, amount, event_id, self.reference, reason, None, at)
            for (account, bucket, balance, reason, _), (units, amount, at) in self._totals.items()
        )
