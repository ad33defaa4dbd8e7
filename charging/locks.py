"""Every row lock the charging app takes, in one place and one order.

Locks are always taken by ascending primary key within a table (limits: root first), and
tables in the order (a session's hand-over lock ->) charging session / usage event -> node
limits -> buckets -> money balances, so two charges can never wait on each other in a cycle. On SQLite
``select_for_update`` is a no-op: its IMMEDIATE transactions serialise writers.
"""

from django.db import connection
from django.db.models import Q

from charging.models import Bucket, ChargingSession, MoneyBalance, NodeLimit, UsageEvent


def usage_event_lock(*, event_id: int) -> UsageEvent:
    return UsageEvent.objects.select_for_update().get(pk=event_id)


def money_balance_lock(*, billing_account_id: int) -> MoneyBalance:
    return MoneyBalance.objects.select_for_update().get(billing_account_id=billing_account_id)


def node_limits_lock(*, nodes_by_unit: dict[str, set[int]], limit_ids: set[int] = frozenset()) -> list[NodeLimit]:
    """Limits on tree paths (per unit), and any others named (e.g. ones a session holds on
    from before its line moved), in one statement, root first: every path from one root takes
    them in the same order (level, node, unit), so two charges in one company never wait on
    each other in a cycle."""
    wanted = Q(pk__any=limit_ids)
    for unit, node_ids in nodes_by_unit.items():
        wanted |= Q(node_id__any=node_ids, unit=unit)
    if not limit_ids and not any(nodes_by_unit.values()):
        return []
    return list(
        NodeLimit.objects.select_for_update(of=("self",)).filter(wanted).order_by("node__level", "node_id", "unit")
    )


def buckets_lock_by_id(*, bucket_ids: set[int]) -> dict[int, Bucket]:
    if not bucket_ids:
        return {}
    return {b.pk: b for b in Bucket.objects.select_for_update().filter(pk__any=bucket_ids).order_by("pk")}


def money_balances_lock(*, billing_account_ids: set[int]) -> dict[int, MoneyBalance]:
    """Money balances by account id, locked by ascending primary key."""
    if not billing_account_ids:
        return {}
    rows = (
        MoneyBalance.objects.select_for_update(of=("self",))
        .filter(billing_account_id__any=billing_account_ids)
        .select_related("billing_account")
        .order_by("pk")
    )
    return {row.billing_account_id: row for row in rows}


def charging_session_lock(*, source: str, session_id: str) -> ChargingSession | None:
    return (
        ChargingSession.objects.select_for_update(of=("self",))
        .select_related("line")
        .filter(source=source, session_id=session_id)
        .first()
    )


def charging_session_lock_by_pk(*, pk: int) -> ChargingSession:
    return ChargingSession.objects.select_for_update(of=("self",)).select_related("line").get(pk=pk)


def usage_events_lock_values(*, event_ids: list[int], fields: tuple[str, ...]) -> list[tuple]:
    """The received usage events of a batch, locked by ascending primary key, read as plain
    values (a batch of thousands needs no model instances). The status is checked here, not
    in the query: found by key alone, the rows are read straight from the primary key's index."""
    rows = (
        UsageEvent.objects.select_for_update().filter(pk__any=event_ids).order_by("pk").values_list("status", *fields)
    )
    return [values for status, *values in rows if status == UsageEvent.Status.RECEIVED]


def session_handover_lock(*, source: str, session_id: str) -> None:
    """Held while the quota store hands a session to the database, and taken by every
    database request of a session in the store's mode: a twin of the request that hands it
    over waits until the session is in the database, then gets the first answer. (Advisory,
    for this transaction; SQLite serialises writers anyway.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"session:{source}:{session_id}"])
