"""Counting periods of limits and spending caps: a day or a calendar month, local time."""

from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from charging.models import MoneyBalance, NodeLimit


def period_start(*, period: str, at: datetime) -> datetime:
    """The start of the day or month that ``at`` falls in, in the operator's time zone."""
    local = timezone.localtime(at)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        start = start.replace(day=1)
    return start


def limit_count(limit, *, units: int, at: datetime) -> None:
    """Counts ``units`` used at ``at`` against a limit (a ``NodeLimit`` or a plain row of
    one): usage of a period already closed counts in none."""
    if at >= limit.period_start:
        limit.used += units


def limit_periods_roll(*, limits: list[NodeLimit], at: datetime) -> None:
    """A limit counts from the start of its period; a new period starts from zero. A limit
    set up during a period counts from that period's start. Written back in a statement or
    two, however many limits rolled."""
    rolled: dict[tuple[datetime, bool], list[int]] = {}
    current: dict[str, datetime] = {}  # a batch's limits share a few periods

    for limit in limits:
        start = current.get(limit.period)
        if start is None:
            # In UTC, as rows are read: comparing datetimes of two time zones converts both,
            # each time, and a batch compares thousands.
            start = current[limit.period] = period_start(period=limit.period, at=at).astimezone(UTC)
        if limit.period_start == start:
            continue  # the current period already (nearly every limit)
        counting = period_start(period=limit.period, at=limit.period_start)
        if counting > start:
            continue  # ``at`` lies before the period it counts: nothing to roll
        reset = counting < start
        if reset:
            limit.used = 0
        limit.period_start = start
        rolled.setdefault((start, reset), []).append(limit.pk)
    for (start, reset), ids in rolled.items():
        changes = {"period_start": start, **({"used": 0} if reset else {})}
        NodeLimit.objects.filter(pk__in=ids).update(**changes)


def spending_period_roll(*, balance: MoneyBalance, at: datetime) -> None:
    """A customer's spending cap counts per calendar month: a new month starts from zero."""
    start = period_start(period="month", at=at)
    if balance.period_start is None or balance.period_start < start:
        balance.period_spent = Decimal(0)
        balance.period_start = start
        MoneyBalance.objects.filter(pk=balance.pk).update(period_spent=0, period_start=start)
