"""Reads of balances, the ledger and usage."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from charging.models import Bucket, LedgerEntry, MoneyBalance, NodeLimit, UsageEvent
from charging.units import format_units
from portal.models import BillingAccount, Line
from portal.money import format_money


def line_buckets(*, line: Line, at: datetime | None = None) -> QuerySet[Bucket]:
    """Allowances usable now, in the order they are drawn from."""
    at = at or timezone.now()
    return (
        Bucket.objects.filter(line=line, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by("priority", "valid_until", "pk")
    )


def bucket_view(bucket: Bucket) -> dict:
    percent = 0 if bucket.initial == 0 else round(100 * bucket.remaining / bucket.initial)
    return {
        "id": bucket.pk,
        "name": bucket.name,
        "unit": bucket.unit,
        "remaining": bucket.remaining,
        "initial": bucket.initial,
        "percent_left": percent,
        "display": format_units(bucket.remaining, bucket.unit),
        "initial_display": format_units(bucket.initial, bucket.unit),
    }


def line_balance_snapshot(*, line_id: int) -> dict:
    """The compact state a live page needs to redraw one line."""
    return line_balance_snapshots(line_ids=[line_id])[line_id]


def account_money_snapshots(*, account_ids) -> dict[int, dict]:
    """Each billing account's money as a live page shows it (two queries)."""
    if not account_ids:
        return {}
    accounts = BillingAccount.objects.filter(pk__in=account_ids)
    amounts = dict(MoneyBalance.objects.filter(billing_account__in=accounts).values_list("billing_account", "amount"))
    return {account.pk: _money_view(account, amounts.get(account.pk, Decimal(0))) for account in accounts}


def _money_view(account: BillingAccount, amount: Decimal) -> dict:
    return {"account": account.pk, "amount": str(amount), "display": format_money(amount, account.currency)}


def line_balance_snapshots(*, line_ids: list[int]) -> dict[int, dict]:
    """The same for many lines, in three queries whatever their number."""
    at = timezone.now()
    lines = Line.objects.select_related("billing_account").filter(pk__in=line_ids)
    accounts = {line.billing_account_id for line in lines}
    amounts = dict(
        MoneyBalance.objects.filter(billing_account_id__in=accounts).values_list("billing_account", "amount")
    )
    buckets: dict[int, list[dict]] = {line_id: [] for line_id in line_ids}
    usable = (
        Bucket.objects.filter(line_id__in=line_ids, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by("priority", "valid_until", "pk")
    )
    for bucket in usable:
        buckets[bucket.line_id].append(bucket_view(bucket))
    snapshots = {}
    for line in lines:
        account = line.billing_account
        amount = amounts.get(account.pk, Decimal(0))
        snapshots[line.pk] = {"buckets": buckets[line.pk], "money": _money_view(account, amount)}
    return snapshots


def line_recent_usage(*, line: Line, limit: int = 10) -> QuerySet[UsageEvent]:
    return UsageEvent.objects.filter(line=line, status=UsageEvent.Status.CHARGED).order_by("-occurred_at")[:limit]


def line_usage_by_hour(*, line: Line, unit: str, hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Units drawn per hour over the last ``hours`` hours, oldest first, for the usage chart."""
    now = now or timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    totals = [0] * hours
    events = UsageEvent.objects.filter(
        line=line, unit=unit, status=UsageEvent.Status.CHARGED, occurred_at__gte=start
    ).values_list("occurred_at", "quantity")
    for occurred_at, quantity in events:
        index = int((occurred_at - start).total_seconds() // 3600)
        if 0 <= index < hours:
            totals[index] += quantity
    return [{"hour": (start + timedelta(hours=i)).isoformat(), "units": totals[i]} for i in range(hours)]


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
    money_sums = dict(
        LedgerEntry.objects.filter(money_balance__isnull=False)
        .values_list("money_balance")
        .annotate(total=Sum("amount"))
    )
    for balance_id, amount in MoneyBalance.objects.values_list("pk", "amount"):
        total = money_sums.get(balance_id, Decimal(0))
        if total != amount:
            problems.append(f"money balance {balance_id}: amount {amount}, ledger {total}")
    return problems


def node_snapshots(*, node_ids: list[int]) -> dict[int, dict]:
    """Per cost centre, its limits and pools as a live page redraws them (two queries)."""
    snapshots: dict[int, dict] = {node_id: {"limits": [], "pools": []} for node_id in node_ids}
    if not node_ids:
        return snapshots
    for limit in NodeLimit.objects.filter(node_id__in=node_ids).order_by("unit"):
        snapshots[limit.node_id]["limits"].append(
            {
                "id": limit.pk,
                "unit": limit.unit,
                "limit": limit.limit,
                "used": limit.used,
                "reserved": limit.reserved,
                "used_display": format_units(limit.used, limit.unit),
                "limit_display": format_units(limit.limit, limit.unit),
            }
        )
    for bucket in Bucket.objects.filter(cost_centre_id__in=node_ids).order_by("priority", "pk"):
        snapshots[bucket.cost_centre_id]["pools"].append(bucket_view(bucket))
    return snapshots
