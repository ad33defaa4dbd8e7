"""Counting periods of limits and spending caps: a day or a calendar month, local time."""

from datetime import datetime

from django.utils import timezone


def period_start(*, period: str, at: datetime) -> datetime:
    """The start of the day or month that ``at`` falls in, in the operator's time zone."""
    local = timezone.localtime(at)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        start = start.replace(day=1)
    return start
