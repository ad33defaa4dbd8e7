"""Every row lock the charging app takes, in one place and one order.

Locks are always taken by ascending primary key within a table (limits: the lines' own
first, then the cost centres', each by node), and tables in the order (a session's hand-over
lock ->) charging session / usage event -> node limits -> buckets -> money balances, so two
charges can never wait on each other in a cycle. On SQLite ``select_for_update`` is a no-op:
its IMMEDIATE transactions serialise writers.
"""

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Q, TextField
from django.db.models.functions import Cast

from charging.allowances import usable_buckets_of
from charging.context import ChargingContext
from charging.models import (
    Bucket,
    ChargingSession,
    MoneyBalance,
    NodeLimit,
    QuotaLogPosition,
    ThresholdNotice,
    UsageChargeSweep,
    UsageEvent,
)
from charging.periods import limit_periods_roll, spending_period_roll


def usage_event_lock(*, event_id: int) -> UsageEvent:
    return UsageEvent.objects.select_for_update().get(pk=event_id)


def money_balance_lock(*, billing_account_id: int) -> MoneyBalance:
    return MoneyBalance.objects.select_for_update().get(billing_account_id=billing_account_id)


@dataclass(slots=True)
class LimitRow:
    """A node limit read as plain values: what charging reads and moves of it, where a batch
    reads thousands (a model instance costs several times more to build). It answers to the
    same attribute names as ``NodeLimit``, and is written back with ``rows_update``."""

    pk: int
    node_id: int
    unit: str
    period: str
    limit: int
    used: int
    reserved: int
    in_store: int
    period_start: datetime
    on_exceed: str
    overage_price: Decimal | None
    overage_per_units: int | None
    thresholds: tuple[int, ...]  # as read: the same percentages for every limit that has them

    @property
    def headroom(self) -> int:
        return self.limit - self.used - self.reserved


# Read as they are, all but the thresholds: LimitRow's last field, read as text and passed last.
_LIMIT_ROW_FIELDS = tuple(name for name in LimitRow.__slots__ if name != "thresholds")


@functools.lru_cache(maxsize=256)
def _thresholds(text: str) -> tuple[int, ...]:
    """A limit's thresholds from their JSON text: most limits share a few settings (most
    often none), so each is parsed once, not once per limit."""
    return tuple(json.loads(text))


def node_limits_lock(
    *, nodes_by_unit: dict[str, set[int]], limit_ids: set[int] = frozenset(), as_rows: bool = False
) -> list[NodeLimit] | list[LimitRow]:
    """Limits on tree paths (per unit), and any others named (e.g. ones a session holds on
    from before its line moved), in the global order (see ``NodeLimitsLock``); ``as_rows``:
    read as ``LimitRow`` values."""
    return NodeLimitsLock(nodes_by_unit=nodes_by_unit, limit_ids=limit_ids).all(as_rows=as_rows)


class NodeLimitsLock:
    """Limits in the one global order: first those of the lines' own (device) nodes, each
    touched by one line only, then the cost centres' limits, shared by many lines (each part
    by node and unit). Every charge takes them in that order, so two charges never wait on
    each other in a cycle; and a batch can lock its lines' own rows, and do its work on them,
    before it locks (and so holds up others on) the shared ones. (By node key, not root
    first: any one order will do, and this one needs no join to the tree.)"""

    def __init__(self, *, nodes_by_unit: dict[str, set[int]], limit_ids: set[int] = frozenset()):
        self.nodes_by_unit = nodes_by_unit
        self.limit_ids = limit_ids

    def all(self, *, as_rows: bool = False) -> list[NodeLimit] | list[LimitRow]:
        """Every limit, in one statement."""
        shared_last = ExpressionWrapper(Q(node__line__isnull=True), output_field=BooleanField())
        return self._lock(self.nodes_by_unit, self.limit_ids, shared_last, as_rows=as_rows)

    def in_two_steps(self, *, own_node_ids: set[int], between: Callable[[], None]) -> list[NodeLimit]:
        """The lines' own limits (those of ``own_node_ids``, each line's node on its path),
        then ``between()``, then the shared ones."""
        own = self.lines_own(own_node_ids=own_node_ids)
        between()
        return own + self.shared(own_node_ids=own_node_ids)

    def lines_own(self, *, own_node_ids: set[int], as_rows: bool = False) -> list[NodeLimit] | list[LimitRow]:
        """The lines' own limits, locked; ``as_rows``: read as ``LimitRow`` values."""
        self._only_paths()
        own = {unit: nodes & own_node_ids for unit, nodes in self.nodes_by_unit.items()}
        return self._lock(own, set(), as_rows=as_rows)

    def shared(self, *, own_node_ids: set[int], as_rows: bool = False) -> list[NodeLimit] | list[LimitRow]:
        """The shared limits, locked."""
        self._only_paths()
        shared = {unit: nodes - own_node_ids for unit, nodes in self.nodes_by_unit.items()}
        return self._lock(shared, set(), as_rows=as_rows)

    def _only_paths(self) -> None:
        if self.limit_ids:
            raise ValueError("limits named by id are locked in one statement (their nodes are not known here)")

    @staticmethod
    def _lock(
        nodes_by_unit: dict[str, set[int]], limit_ids: set[int], *order, as_rows: bool = False
    ) -> list[NodeLimit] | list[LimitRow]:
        if not limit_ids and not any(nodes_by_unit.values()):
            return []
        wanted = Q(pk__any=limit_ids)
        for unit, node_ids in nodes_by_unit.items():
            if node_ids:
                wanted |= Q(node_id__any=node_ids, unit=unit)
        rows = NodeLimit.objects.select_for_update(of=("self",)).filter(wanted).order_by(*order, "node_id", "unit")
        if as_rows:
            values = rows.annotate(thresholds_text=Cast("thresholds", TextField()))
            read = values.values_list(*_LIMIT_ROW_FIELDS, "thresholds_text")
            return [LimitRow(*row, _thresholds(text)) for *row, text in read]
        return list(rows)


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


def usage_charge_sweep_lock() -> UsageChargeSweep:
    """The sweep's position, locked: one sweep at a time."""
    UsageChargeSweep.objects.get_or_create(name="usage")
    return UsageChargeSweep.objects.select_for_update().get(name="usage")


def quota_log_position_lock(*, name: str) -> QuotaLogPosition:
    """How far the quota store's log is applied, locked: one applier at a time."""
    QuotaLogPosition.objects.get_or_create(name=name)
    return QuotaLogPosition.objects.select_for_update().get(name=name)


def threshold_notice_lock(*, notice_id: int) -> ThresholdNotice:
    """A notice with whom it concerns, locked: two workers never both send it."""
    return (
        ThresholdNotice.objects.select_for_update(of=("self",))
        .select_related(
            "bucket__line__billing_account__customer__preferences",
            "bucket__cost_centre__company__customer__preferences",
            "limit__node__company__customer__preferences",
        )
        .get(pk=notice_id)
    )


# --- What a charge may change, locked at once --------------------------------------------------


@dataclass
class Locked:
    """The rows a charge may change, locked in the global order for this transaction.

    Money balances are last in that order and locked only when a charge first needs money
    (most usage is covered by allowances): then every money balance the charge could touch
    is locked at once, by key, so the order still holds.
    """

    limits: list[NodeLimit]
    buckets: dict[int, Bucket]
    money_accounts: set[int]
    at: datetime
    _money: dict[int, MoneyBalance] | None = None
    as_read: dict[tuple[str, int], tuple] = field(default_factory=dict)
    limits_by_id: dict[int, NodeLimit] = field(init=False, default_factory=dict)
    limits_by_node: dict[int, list[NodeLimit]] = field(init=False, default_factory=dict)
    ledger: list = field(init=False, default_factory=list)  # entries settled, written with the counters
    reclaimed: set[tuple[str, int]] = field(init=False, default_factory=set)
    _by_holder: dict[tuple[str, int], list[Bucket]] | None = field(init=False, default=None)

    def __post_init__(self):
        self.as_read = dict(self.counters())
        self.limits_by_id = {limit.pk: limit for limit in self.limits}
        for limit in self.limits:
            self.limits_by_node.setdefault(limit.node_id, []).append(limit)

    @property
    def money(self) -> dict[int, MoneyBalance]:
        """Money balances by billing account id, locked on first use."""
        self.lock_money()
        return self._money

    def lock_money(self) -> None:
        """Locks every money balance the charge could touch, at once and in key order."""
        if self._money is None:
            self._money = _money_balances_lock(account_ids=self.money_accounts, at=self.at)
            self.as_read.update((key, counters) for key, counters in self.counters() if key[0] == "money")

    def buckets_by_holder(self) -> dict[tuple[str, int], list[Bucket]]:
        """The locked buckets by holder, ``("line", id)`` or ``("node", id)``: a batch looks up
        each line's allowances instead of scanning all of them per line."""
        if self._by_holder is None:
            self._by_holder = {}
            for bucket in self.buckets.values():
                holder = ("line", bucket.line_id) if bucket.line_id else ("node", bucket.cost_centre_id)
                self._by_holder.setdefault(holder, []).append(bucket)
        return self._by_holder

    def money_if_locked(self) -> list[MoneyBalance]:
        return list((self._money or {}).values())

    def counters(self):
        """Each locked row's counters, keyed by table and id, to write back only what moved."""
        for limit in self.limits:
            yield ("limit", limit.pk), (limit.used, limit.reserved, limit.in_store)
        for bucket in self.buckets.values():
            yield ("bucket", bucket.pk), (bucket.remaining, bucket.reserved, bucket.in_store)
        for balance in (self._money or {}).values():
            yield ("money", balance.pk), (balance.amount, balance.reserved, balance.period_spent)


def path_nodes_by_unit(ctxs: list[ChargingContext]) -> dict[str, set[int]]:
    """The nodes on the usages' paths, by unit: where their limits are. Steered or not: a
    batch's records may be steered differently by time of day."""
    nodes_by_unit: dict[str, set[int]] = {}
    for ctx in ctxs:
        nodes_by_unit.setdefault(ctx.unit, set()).update(ctx.path_ids)
    return nodes_by_unit


def lock_for(
    *,
    ctx: ChargingContext,
    bucket_ids: set[int] = frozenset(),
    account_ids: set[int] = frozenset(),
    limit_ids: set[int] = frozenset(),
) -> Locked:
    """Locks, in the global order, every row a grant for ``ctx`` and the given holds may touch."""
    return lock_for_batch(ctxs=[ctx], bucket_ids=bucket_ids, account_ids=account_ids, limit_ids=limit_ids)


def lock_for_batch(
    *,
    ctxs: list[ChargingContext],
    bucket_ids: set[int] = frozenset(),
    account_ids: set[int] = frozenset(),
    limit_ids: set[int] = frozenset(),
    at: datetime | None = None,
) -> Locked:
    """Locks every row a batch of charges (and the holds being released) may touch at once,
    in the global order, so that batches running side by side never wait on each other in a
    cycle. Limits roll over to the period of ``at`` (default: the latest charge).

    The rows many lines share (their cost centres' limits, the pools) are locked last, once
    all that can be done before is done: a batch holds up the others only for the time it
    takes to charge, not to read and lock its thousand lines' own rows."""
    at = at or max(ctx.at for ctx in ctxs)
    limits_lock = NodeLimitsLock(nodes_by_unit=path_nodes_by_unit(ctxs), limit_ids=set(limit_ids))
    bucket_ids = set(bucket_ids)

    def find_buckets() -> None:
        bucket_ids.update(usable_buckets_of(ctxs=ctxs))

    if len(ctxs) > 1 and not limit_ids:
        limits = limits_lock.in_two_steps(
            own_node_ids={ctx.path_ids[-1] for ctx in ctxs if ctx.path_ids}, between=find_buckets
        )
    else:  # one line (or limits named by id): one statement
        limits = limits_lock.all()
        find_buckets()
    limit_periods_roll(limits=limits, at=at)
    buckets = buckets_lock_by_id(bucket_ids=bucket_ids)
    accounts = set(account_ids)
    for ctx in ctxs:
        accounts.add(ctx.payer_account_id)
        accounts.add(ctx.line.billing_account_id)
        if ctx.personal_account_id:
            accounts.add(ctx.personal_account_id)
    locked = Locked(limits=limits, buckets=buckets, money_accounts=accounts, at=at)
    if account_ids:  # holds on money are being released: lock them now, in order
        locked.lock_money()
    return locked


def _money_balances_lock(*, account_ids: set[int], at: datetime) -> dict[int, MoneyBalance]:
    money = money_balances_lock(billing_account_ids=account_ids)
    if len(money) < len(account_ids):  # an account that never had money yet gets its balance row
        for account_id in account_ids - set(money):
            MoneyBalance.objects.get_or_create(billing_account_id=account_id)
        money = money_balances_lock(billing_account_ids=account_ids)
    for balance in money.values():
        spending_period_roll(balance=balance, at=at)
    return money
