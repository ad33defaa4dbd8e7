"""The ledger: every change of a balance is one row, and this module alone builds them.

Every path that moves a balance (online sessions and events, offline batches, the quota
store's log, top-ups, payments, charges, adjustments, refunds, grants) describes its changes
as ``Entry`` values and hands them here; they are written with one field list, in one
statement however many. An allowance's grant, and every later change of what it is, carries
its terms (unit, holder, validity, priority). ``ledger_mismatches`` proves the books: each
balance equals the sum of its entries, and each allowance is what its ledger says it is.
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
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
    terms: dict | None = None  # an allowance's terms from this entry on (``bucket_terms``)


# Most entries carry no terms: they are written without the column (null by default), so the
# statements that write thousands of usage entries stay as they were.
_FIELDS_WITHOUT_TERMS = Entry._fields[:-1]


def bucket_terms(
    *, unit: str, line_id: int | None, cost_centre_id: int | None, valid_from, valid_until, priority: int
) -> dict:
    """What an allowance is, as its ledger keeps it: its unit, who holds it (a line or a cost
    centre; the account is the entry's own), when it is valid and its priority. Times in UTC."""
    return {
        "unit": str(unit),
        "line": line_id,
        "cost_centre": cost_centre_id,
        "valid_from": _instant(valid_from),
        "valid_until": _instant(valid_until),
        "priority": priority,
    }


def terms_of(bucket: Bucket) -> dict:
    return bucket_terms(
        unit=bucket.unit,
        line_id=bucket.line_id,
        cost_centre_id=bucket.cost_centre_id,
        valid_from=bucket.valid_from,
        valid_until=bucket.valid_until,
        priority=bucket.priority,
    )


def _instant(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")


def bucket_entry(*, bucket: Bucket, kind: str, units: int, reason: str, at: datetime | None = None, **more) -> Entry:
    """A change of an allowance's units (``more``: reference, usage_event_id, actor_id, and
    ``terms`` for a grant or a change of what it is)."""
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
    with_terms = [row for row in rows if row.terms is not None]
    if with_terms:
        rows_insert(LedgerEntry, Entry._fields, with_terms)
    rows_insert(LedgerEntry, _FIELDS_WITHOUT_TERMS, [row[:-1] for row in rows if row.terms is None])


def ledger_entry_create(entry: Entry) -> LedgerEntry:
    """Writes one entry and returns its row, for callers that refer to it (a recurring
    charge names the entry that charged it)."""
    values = entry._asdict()
    if values["created_at"] is None:
        values["created_at"] = timezone.now()
    return LedgerEntry.objects.create(**values)


def ledger_mismatches() -> list[str]:
    """Every balance that differs from the sum of its ledger, and every allowance that is not
    what its ledger says (its unit, holder, account, validity or priority); empty when the
    books agree."""
    problems = []
    bucket_sums: dict[int, int] = {}
    bucket_accounts: dict[int, set[int]] = {}
    per_account = (
        LedgerEntry.objects.filter(bucket__isnull=False)
        .values_list("bucket", "billing_account")
        .annotate(total=Sum("units"))
    )
    for bucket_id, account_id, total in per_account:
        bucket_sums[bucket_id] = bucket_sums.get(bucket_id, 0) + total
        bucket_accounts.setdefault(bucket_id, set()).add(account_id)
    ledgered_terms = dict(
        LedgerEntry.objects.filter(bucket__isnull=False, terms__isnull=False)
        .order_by("bucket", "pk")  # the latest entry that says what a bucket is wins
        .values_list("bucket", "terms")
    )
    buckets = Bucket.objects.values_list(
        "pk",
        "remaining",
        "billing_account",
        "line__billing_account",
        "unit",
        "line",
        "cost_centre",
        "valid_from",
        "valid_until",
        "priority",
    )
    for bucket_id, remaining, account_id, line_account_id, unit, line_id, node_id, since, until, priority in buckets:
        total = bucket_sums.get(bucket_id, 0)
        if total != remaining:
            problems.append(f"bucket {bucket_id}: remaining {remaining}, ledger {total}")
        accounts = bucket_accounts.get(bucket_id, {account_id})
        if accounts != {account_id}:
            problems.append(f"bucket {bucket_id}: account {account_id}, ledger {sorted(accounts)}")
        if line_account_id is not None and line_account_id != account_id:
            problems.append(f"bucket {bucket_id}: account {account_id}, its line is on account {line_account_id}")
        ledgered = ledgered_terms.get(bucket_id)
        if ledgered is None:
            problems.append(f"bucket {bucket_id}: its grant is not in the ledger")
            continue
        terms = bucket_terms(
            unit=unit, line_id=line_id, cost_centre_id=node_id, valid_from=since, valid_until=until, priority=priority
        )
        for name, value in terms.items():
            if ledgered.get(name) != value:
                problems.append(f"bucket {bucket_id}: {name} {value}, ledger {ledgered.get(name)}")
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
