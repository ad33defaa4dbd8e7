"""Charging a batch of offline usage records fast: the records read as plain values, a shortcut
for the common record, and the ledger written in one statement.

Most records are covered whole by one allowance: for them the full plan (``plan_grant``)
decides nothing that plain integer arithmetic on the locked rows does not, so
``AllowanceShortcut`` does that arithmetic instead. Any other record (money needed, an
allowance running out, a limit whose policy prices the excess, a line whose payer a steering
rule may change) takes the full plan, on the same locked rows, in the same order.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from charging.context import ChargingContext
from charging.grants import Locked, buckets_on_path, path_limits
from charging.locks import usage_events_lock_values
from charging.models import Bucket, LedgerEntry, NodeLimit, UsageEvent
from charging.row_updates import rows_insert, rows_update

_NO_MONEY = Decimal(0)


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

    @property
    def reference(self) -> str:
        return f"usage:{self.external_id}"


_READ = ("pk", "external_id", "line_id", "service", "zone", "quantity", "occurred_at")
_WRITTEN = ["status", "units_from_buckets", "amount_charged", "charged_at"]


def batch_events_lock(*, event_ids: list[int]) -> list[BatchEvent]:
    """The batch's records still to charge, locked, as plain values (no model instances)."""
    return [BatchEvent(*values) for values in usage_events_lock_values(event_ids=event_ids, fields=_READ)]


def batch_events_save(events: list[BatchEvent]) -> None:
    rows_update(UsageEvent, events, _WRITTEN)


class AllowanceShortcut:
    """Charges a record of one context that one allowance covers whole, with no money and no
    limit policy involved: the allowance moves, every limit on the path counts it, one ledger
    entry. ``charge`` says ``False`` (and changes nothing) for any other record."""

    def __init__(self, *, ctx: ChargingContext, locked: Locked):
        self.ctx = ctx
        self.locked = locked
        # A line that may be steered to a personal account is charged the full way: its payer
        # depends on each record's time.
        self.enabled = ctx.personal_account_id is None
        self.limits: list[NodeLimit] = path_limits(ctx=ctx, locked=locked) if self.enabled else []
        self.soft = [limit for limit in self.limits if limit.on_exceed != NodeLimit.OnExceed.BLOCK]
        # Which allowances a record may draw on depends on its time only through their validity.
        self.buckets: list[Bucket] = buckets_on_path(ctx=ctx, locked=locked)
        self.reason = f"{ctx.service} usage"

    def charge(self, event: BatchEvent, ledger: list[tuple]) -> bool:
        if not self.enabled:
            return False
        used, at = event.quantity, event.occurred_at
        # Past a limit whose policy is not to block, the excess is priced: the full plan does that.
        if any(limit.headroom < used for limit in self.soft):
            return False
        bucket = next((b for b in self.buckets if b.available > 0 and b.is_valid_at(at)), None)
        if bucket is None or bucket.available < used:
            return False
        bucket.remaining -= used
        for limit in self.limits:
            if at >= limit.period_start:  # usage of a period already closed counts in none
                limit.used += used
        ledger.append(
            (bucket.billing_account_id, bucket.pk, None, LedgerEntry.Kind.USAGE, -used, _NO_MONEY)
            + (event.pk, event.reference, self.reason, at)
        )
        event.units_from_buckets = used
        event.amount_charged = _NO_MONEY
        return True


# A usage ledger entry as a row: what ``AllowanceShortcut`` appends and ``ledger_row`` makes.
_LEDGER_FIELDS = (
    "billing_account_id",
    "bucket_id",
    "money_balance_id",
    "kind",
    "units",
    "amount",
    "usage_event_id",
    "reference",
    "reason",
    "created_at",
)


def ledger_row(entry: LedgerEntry) -> tuple:
    """A usage entry the full plan settled, as a row written with the shortcut's."""
    return tuple(getattr(entry, name) for name in _LEDGER_FIELDS)


def ledger_rows_insert(rows: list[tuple]) -> None:
    """Writes a batch's usage entries in one statement, in the order they were settled."""
    rows_insert(LedgerEntry, _LEDGER_FIELDS, rows)
