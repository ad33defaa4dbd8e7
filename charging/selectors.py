"""Reads of balances, the ledger and usage."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from charging.models import Bucket, LedgerEntry, MoneyBalance, NodeLimit, UsageEvent
from charging.units import format_units
from portal.models import BillingAccount, Line
from portal.money import format_money


def account_has_money(*, billing_account_id: int) -> bool:
    """Whether an account holds or held money or allowances: a balance or hold that is not
    nothing, or any ledger entry."""
    holds = MoneyBalance.objects.filter(billing_account_id=billing_account_id).exclude(amount=0, reserved=0)
    return holds.exists() or LedgerEntry.objects.filter(billing_account_id=billing_account_id).exists()


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
    accounts = BillingAccount.objects.filter(pk__in=account_ids).values_list("pk", "currency")
    balances = MoneyBalance.objects.filter(billing_account__in=account_ids)
    amounts = dict(balances.values_list("billing_account", "amount"))
    return {pk: _money_view(pk, currency, amounts.get(pk, Decimal(0))) for pk, currency in accounts}


def _money_view(account_id: int, currency: str, amount: Decimal) -> dict:
    return {"account": account_id, "amount": str(amount), "display": format_money(amount, currency)}


def line_balance_snapshots(*, line_ids: list[int]) -> dict[int, dict]:
    """The same for many lines, in three queries whatever their number (read as plain values:
    an offline batch pushes a thousand lines at once)."""
    if not line_ids:
        return {}
    at = timezone.now()
    lines = list(
        Line.objects.filter(pk__any=line_ids).values_list("pk", "billing_account_id", "billing_account__currency")
    )
    amounts = dict(
        MoneyBalance.objects.filter(billing_account_id__any={account for _, account, _ in lines}).values_list(
            "billing_account", "amount"
        )
    )
    buckets: dict[int, list[dict]] = {line_id: [] for line_id in line_ids}
    usable = (
        Bucket.objects.filter(line_id__any=line_ids, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by("priority", "valid_until", "pk")
    )
    for bucket in usable:
        buckets[bucket.line_id].append(bucket_view(bucket))
    money: dict[int, dict] = {}  # the lines of one account share its view
    snapshots = {}
    for line_id, account_id, currency in lines:
        if account_id not in money:
            money[account_id] = _money_view(account_id, currency, amounts.get(account_id, Decimal(0)))
        snapshots[line_id] = {"buckets": buckets[line_id], "money": money[account_id]}
    return snapshots


def line_recent_usage(*, line: Line, limit: int = 10) -> QuerySet[UsageEvent]:
    return UsageEvent.objects.filter(line=line, status=UsageEvent.Status.CHARGED).order_by("-occurred_at")[:limit]


def line_usage_by_hour(*, line: Line, unit: str, hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Units drawn per hour over the last ``hours`` hours, oldest first, for the usage chart."""
    now = now or timezone.now()
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    totals = [0] * hours
    events = (
        UsageEvent.objects.filter(line=line, unit=unit, status=UsageEvent.Status.CHARGED, occurred_at__gte=start)
        .order_by()  # summed here: the model's ordering would only add a sort
        .values_list("occurred_at", "quantity")
    )
    for occurred_at, quantity in events:
        index = int((occurred_at - start).total_seconds() // 3600)
        if 0 <= index < hours:
            totals[index] += quantity
    return [{"hour": (start + timedelta(hours=i)).isoformat(), "units": totals[i]} for i in range(hours)]


def node_snapshots(*, node_ids: list[int]) -> dict[int, dict]:
    """Per cost centre, its limits and pools as a live page redraws them (two queries)."""
    snapshots: dict[int, dict] = {node_id: {"limits": [], "pools": []} for node_id in node_ids}
    if not node_ids:
        return snapshots
    limits = NodeLimit.objects.filter(node_id__in=node_ids).order_by("unit")
    for pk, node_id, unit, limit, used, reserved in limits.values_list(
        "pk", "node_id", "unit", "limit", "used", "reserved"
    ):
        snapshots[node_id]["limits"].append(
            {
                "id": pk,
                "unit": unit,
                "limit": limit,
                "used": used,
                "reserved": reserved,
                "used_display": format_units(used, unit),
                "limit_display": format_units(limit, unit),
            }
        )
    for bucket in Bucket.objects.filter(cost_centre_id__in=node_ids).order_by("priority", "pk"):
        snapshots[bucket.cost_centre_id]["pools"].append(bucket_view(bucket))
    return snapshots
