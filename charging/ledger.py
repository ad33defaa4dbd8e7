"""The ledger: every change of a balance is one row, and this module alone builds them.

Every path that moves a balance (online sessions and events, offline batches, the quota
store's log, top-ups, payments, charges, adjustments, refunds, grants) describes its changes
as ``Entry`` values and hands them here; they are written with one field list, in one
statement however many. ``ledger_mismatches`` proves the books: each balance equals the sum
of its entries.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from charging.models import Bucket, LedgerEntry, MoneyBalance
from portal.db.rows import rows_insert

Kind = LedgerEntry.Kind
_NO_MONEY = Decimal(0)


class Entry(NamedTuple):
    """One change of one balance: a bucket's units or a money balance's amount, never both.
    Its fields are the ledger's columns, in the order they are written."""

    billing_account_id: int
    kind: str
    bucket_id: int | None = None
    money_balance_id: int | None = None
    units: int = 0
    amount: Decimal = _NO_MONEY
    usage_event_id: int | None = None
    reference: str = ""
    reason: str = ""
    actor_id: int | None = None
    created_at: datetime | None = None  # now, when written


def bucket_entry(*, bucket: Bucket, kind: str, units: int, reason: str, at: datetime | None = None, **more) -> Entry:
    """A change of an allowance's units (``more``: reference, usage_event_id, actor_id)."""
    return Entry(
        bucket.billing_account_id, kind, bucket_id=bucket.pk, units=units, reason=reason, created_at=at, **more
    )


def money_entry(
    *, balance: MoneyBalance, kind: str, amount: Decimal, reason: str, at: datetime | None = None, **more
) -> Entry:
    """A change of an account's money (``more``: reference, usage_event_id, actor_id)."""
    return Entry(
        balance.billing_account_id,
        kind,
        money_balance_id=balance.pk,
        amount=amount,
        reason=reason,
        created_at=at,
        **more,
    )


def refund_entry(*, of: LedgerEntry, reference: str, reason: str, actor_id: int | None, at: datetime) -> Entry:
    """Gives back exactly what ``of`` took, from the same balance."""
    return Entry(
        of.billing_account_id,
        Kind.REFUND,
        bucket_id=of.bucket_id,
        money_balance_id=of.money_balance_id,
        units=-of.units,
        amount=-of.amount,
        reference=reference,
        reason=reason,
        actor_id=actor_id,
        created_at=at,
    )


def ledger_write(entries: Iterable[Entry]) -> None:
    """Writes the entries in one statement (inside the caller's transaction, with the
    balances they move)."""
    now = timezone.now()
    rows = [entry if entry.created_at is not None else entry._replace(created_at=now) for entry in entries]
    rows_insert(LedgerEntry, Entry._fields, rows)


def ledger_entry_create(entry: Entry) -> LedgerEntry:
    """Writes one entry and returns its row, for callers that refer to it (a recurring
    charge names the entry that charged it)."""
    values = entry._asdict()
    if values["created_at"] is None:
        values["created_at"] = timezone.now()
    return LedgerEntry.objects.create(**values)


def ledger_mismatches() -> list[str]:
    """Every balance that differs from the sum of its ledger; empty when the books agree."""
    problems = []
    bucket_sums = dict(
        LedgerEntry.objects.filter(bucket__isnull=False).values_list("bucket").annotate(total=Sum("units"))
    )
    for bucket_id, remaining in Bucket.objects.values_list("pk", "remaining"):
        total = bucket_sums.get(bucket_id, 0)
        if total != remaining:
            problems.append(f"bucket {bucket_id}: remaining {remaining}, ledger {total}")
    money_sums = _money_sums()
    for balance_id, amount in MoneyBalance.objects.values_list("pk", "amount"):
        total = money_sums.get(balance_id, _NO_MONEY)
        if total != amount:
            problems.append(f"money balance {balance_id}: amount {amount}, ledger {total}")
    return problems


def _money_sums() -> dict[int, Decimal]:
    """Each money balance's ledger total, exactly. SQLite keeps these amounts as floats and
    would add them as floats (a hundred times 0.1 is not 10 there): each amount is read back
    as a Decimal and added here instead."""
    entries = LedgerEntry.objects.filter(money_balance__isnull=False)
    if connection.vendor != "sqlite":
        return dict(entries.values_list("money_balance").annotate(total=Sum("amount")))
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for balance_id, amount in entries.values_list("money_balance", "amount").iterator(chunk_size=10_000):
        totals[balance_id] += amount
    return totals
