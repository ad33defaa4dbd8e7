"""Every row lock the charging app takes, in one place and one order.

Locks are always taken by ascending primary key within a table, and tables in the order
usage event -> buckets -> money balance, so two charges can never wait on each other in a
cycle. On SQLite ``select_for_update`` is a no-op: its IMMEDIATE transactions serialise writers.
"""

from django.db.models import QuerySet

from charging.models import Bucket, MoneyBalance, UsageEvent


def usage_event_lock(*, event_id: int) -> UsageEvent:
    return UsageEvent.objects.select_for_update().get(pk=event_id)


def buckets_lock(*, queryset: QuerySet[Bucket]) -> list[Bucket]:
    return list(queryset.select_for_update().order_by("pk"))


def money_balance_lock(*, billing_account_id: int) -> MoneyBalance:
    return MoneyBalance.objects.select_for_update().get(billing_account_id=billing_account_id)
