"""Deciding a grant: which balances and limits a usage may draw on, and how much of each.

A grant walks the line's path in the cost-centre tree (root first), takes what every limit on
it allows, then draws units from allowances (the line's own and the pools of its ancestors,
by priority then soonest expiry) and the rest from money at the tariff. Past a limit, the
limit's policy decides: block, throttle, overage at a price, or the user's personal account.

Everything here works on rows the caller has locked (``charging.locks``), so the plan it
returns still holds when the caller applies it in the same transaction.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import F, Q

from charging.context import ChargingContext
from charging.locks import NodeLimitsLock, buckets_lock_by_id, money_balances_lock
from charging.models import (
    Bucket,
    MoneyBalance,
    NodeLimit,
    Tariff,
    TariffRate,
)
from charging.periods import period_start
from charging.quota import quota_store_enabled
from charging.rating import affordable_units, rate


class FinalUnitAction:
    """What the network does when the granted units run out (RFC 4006 Final-Unit-Action)."""

    TERMINATE = "terminate"  # blocked by a limit, or nothing left to draw on
    REDIRECT = "redirect"  # out of money: send the user to the top-up page
    RESTRICT = "restrict"  # throttled past a limit


TARIFF = "tariff"
OVERAGE = "overage"


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
    # Calls back the free part of the quota store's slices of the rows given (see ``plan_grant``).
    slices_reclaim: Callable[[list], None] | None = None
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


@dataclass
class HoldPlan:
    units: int
    bucket_id: int | None = None
    account_id: int | None = None
    amount: Decimal = Decimal(0)
    price_key: str = ""


@dataclass
class GrantPlan:
    requested: int
    units: int = 0
    holds: list[HoldPlan] = field(default_factory=list)
    limit_ids: list[int] = field(default_factory=list)
    throttled: bool = False
    final_unit_action: str = ""
    must_charge: bool = False


def usable_buckets_of(*, ctxs: list[ChargingContext]) -> set[int]:
    """Allowances any of these usages may draw on now, in one query (read without a lock;
    each charge re-checks its own once locked)."""
    return usable_buckets(
        line_ids={ctx.line.pk for ctx in ctxs},
        node_ids={node for ctx in ctxs for node in ctx.path_ids},
        units={ctx.unit for ctx in ctxs},
        at=min(ctx.at for ctx in ctxs),
    )


def usable_buckets(*, line_ids: set[int], node_ids: set[int], units: set[str], at: datetime) -> set[int]:
    """Allowances of these lines and nodes, in these units, with units left at ``at`` or
    later (see ``usable_buckets_of``)."""
    holders = Q(line_id__any=line_ids)
    if node_ids:
        holders |= Q(cost_centre_id__any=node_ids)
    return set(
        Bucket.objects.filter(holders, unit__in=units)
        .filter(Q(remaining__gt=F("reserved")) | Q(in_store__gt=0))  # a slice may be called back
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by()
        .values_list("pk", flat=True)
    )


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
    if quota_store_enabled():
        from charging.quota.slices import slices_reclaim_locked  # the store builds on this module

        locked.slices_reclaim = slices_reclaim_locked
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
        _roll_spending_period(balance=balance, at=at)
    return money


def plan_grant(
    *, ctx: ChargingContext, locked: Locked, requested: int, session_used: int = 0, must_charge: bool = False
) -> GrantPlan:
    """How much of ``requested`` can be granted now, and what each unit is held on.

    ``must_charge`` is for usage that already happened (offline records, late reports):
    nothing is blocked; every unit counts against every limit on the path, even past it, and
    is charged, allowances first, then money even past what may be spent, with the excess
    over a limit priced by that limit's policy (overage, personal account).
    """
    plan = GrantPlan(requested=requested, must_charge=must_charge)
    if requested <= 0:
        return plan
    limits = path_limits(ctx=ctx, locked=locked)
    if locked.slices_reclaim:
        # The quota store may hold what this charge lacks, in slices nobody uses yet: call
        # them back (once per row and transaction) rather than refuse or charge money for it.
        short = _short_in_store(ctx=ctx, locked=locked, limits=limits, requested=requested)
        if short:
            locked.slices_reclaim(short)
    blocking = [] if must_charge else [limit for limit in limits if limit.on_exceed == NodeLimit.OnExceed.BLOCK]
    hard = [limit.headroom for limit in blocking]
    soft = [limit for limit in limits if limit.on_exceed != NodeLimit.OnExceed.BLOCK]
    allowed = max(0, min([requested, *hard]))
    binding = min(soft, key=lambda limit: limit.headroom, default=None)
    within = min(allowed, max(0, binding.headroom)) if binding else allowed
    excess = allowed - within

    got = _draw_allowances_then_money(ctx=ctx, locked=locked, plan=plan, units=within, session_used=session_used)
    if excess and binding is not None and got == within:
        policy = binding.on_exceed
        if policy == NodeLimit.OnExceed.THROTTLE:
            plan.throttled = True
            got += _draw_allowances_then_money(
                ctx=ctx, locked=locked, plan=plan, units=excess, session_used=session_used + got
            )
        elif policy == NodeLimit.OnExceed.OVERAGE:
            overage = Tariff(price=binding.overage_price, per_units=binding.overage_per_units, increment=1)
            got += _draw_money(
                ctx=ctx,
                locked=locked,
                plan=plan,
                account_id=ctx.line.billing_account_id,
                units=excess,
                tariff=overage,
                rates=[],
                price_key=OVERAGE,
                session_used=0,
            )
        elif policy == NodeLimit.OnExceed.PERSONAL and ctx.personal_account_id:
            got += _draw_money(
                ctx=ctx,
                locked=locked,
                plan=plan,
                account_id=ctx.personal_account_id,
                units=excess,
                tariff=ctx.tariff,
                rates=ctx.rates,
                price_key=TARIFF,
                session_used=session_used + got,
            )
    if must_charge and got < allowed:  # a policy that could not take the excess: charge it as usual
        got += _draw_allowances_then_money(
            ctx=ctx, locked=locked, plan=plan, units=allowed - got, session_used=session_used + got
        )
    plan.units = got
    plan.limit_ids = [limit.pk for limit in limits] if got or must_charge else []
    if got < requested:
        plan.final_unit_action = _why_short(ctx=ctx, limits=blocking, plan=plan, allowed=allowed)
    elif plan.throttled:
        plan.final_unit_action = FinalUnitAction.RESTRICT
    return plan


def _draw_allowances_then_money(
    *, ctx: ChargingContext, locked: Locked, plan: GrantPlan, units: int, session_used: int
) -> int:
    got = 0
    held = {h.bucket_id: h.units for h in plan.holds if h.bucket_id}
    for bucket in sorted(locked.buckets.values(), key=bucket_draw_order(ctx.at)):
        if got == units:
            break
        if not _usable(bucket=bucket, ctx=ctx):
            continue
        take = min(bucket.available - held.get(bucket.pk, 0), units - got)
        if take > 0:
            plan.holds.append(HoldPlan(units=take, bucket_id=bucket.pk))
            got += take
    if got < units:
        got += _draw_money(
            ctx=ctx,
            locked=locked,
            plan=plan,
            account_id=ctx.payer_account_id,
            units=units - got,
            tariff=ctx.tariff,
            rates=ctx.rates,
            price_key=TARIFF,
            session_used=session_used + got,
        )
    return got


def _draw_money(
    *,
    ctx: ChargingContext,
    locked: Locked,
    plan: GrantPlan,
    account_id: int,
    units: int,
    tariff: Tariff | None,
    rates: list[TariffRate],
    price_key: str,
    session_used: int,
) -> int:
    balance = locked.money.get(account_id)
    if tariff is None or balance is None or units <= 0:
        return 0
    rating = {
        "tariff": tariff,
        "rates": rates,
        "zone": ctx.zone,
        "started_at": ctx.at,
        "session_used": session_used,
        "period_used": ctx.period_used + session_used,
    }
    if plan.must_charge:
        affordable = units  # it was used already: the account owes it, whatever is left
    else:
        budget = money_available(balance=balance) - sum(h.amount for h in plan.holds if h.account_id == account_id)
        if budget < 0:
            return 0
        affordable = affordable_units(**rating, budget=budget, limit=units)
    if affordable <= 0:
        return 0
    amount = rate(**rating, units=affordable).amount
    plan.holds.append(HoldPlan(units=affordable, account_id=account_id, amount=amount, price_key=price_key))
    return affordable


def _short_in_store(*, ctx: ChargingContext, locked: Locked, limits: list[NodeLimit], requested: int) -> list:
    """The limits and allowances of this charge that fall short of it while the quota store
    holds a slice of them, each once per transaction."""
    usable = [b for b in locked.buckets.values() if _usable(bucket=b, ctx=ctx)]
    short = [limit for limit in limits if limit.headroom < requested]
    if sum(b.available for b in usable) < requested:
        short += usable
    rows = [row for row in short if row.in_store and (row._meta.model_name, row.pk) not in locked.reclaimed]
    locked.reclaimed.update((row._meta.model_name, row.pk) for row in rows)
    return rows


def money_available(*, balance: MoneyBalance) -> Decimal:
    """What an account may still spend: funds plus credit, less what sessions hold, within
    what is left of the customer's own spending cap."""
    available = balance.amount + balance.billing_account.credit_limit - balance.reserved
    if balance.spending_cap is not None:
        available = min(available, balance.spending_cap - balance.period_spent - balance.reserved)
    return available


def path_limits(*, ctx: ChargingContext, locked: Locked) -> list[NodeLimit]:
    """The locked limits that apply to this usage: on the line's path, of its unit."""
    if ctx.steered_personal:
        return []
    return limits_on_path(locked=locked, path_ids=ctx.path_ids, unit=ctx.unit)


def limits_on_path(*, locked: Locked, path_ids: list[int], unit: str) -> list[NodeLimit]:
    return [limit for node in path_ids for limit in locked.limits_by_node.get(node, ()) if limit.unit == unit]


def _why_short(*, ctx: ChargingContext, limits: list[NodeLimit], plan: GrantPlan, allowed: int) -> str:
    if allowed < plan.requested and any(limit.on_exceed == NodeLimit.OnExceed.BLOCK for limit in limits):
        return FinalUnitAction.TERMINATE
    if plan.throttled:
        return FinalUnitAction.RESTRICT
    if ctx.tariff is not None:
        return FinalUnitAction.REDIRECT
    return FinalUnitAction.TERMINATE


def buckets_on_path(*, ctx: ChargingContext, locked: Locked) -> list[Bucket]:
    """The locked allowances this usage may draw on whenever they are valid (the caller checks
    validity at the usage's own time), in the order they are drawn from."""
    if ctx.steered_personal:
        return []
    return buckets_of_line(locked=locked, line_id=ctx.line.pk, path_ids=ctx.path_ids, unit=ctx.unit, at=ctx.at)


def buckets_of_line(*, locked: Locked, line_id: int, path_ids: list[int], unit: str, at: datetime) -> list[Bucket]:
    """The line's own allowances and the pools on its path, of a unit, in the order they are
    drawn from at ``at`` (see ``buckets_on_path``)."""
    holders = locked.buckets_by_holder()
    on_path = [*holders.get(("line", line_id), ())]
    for node in path_ids:
        on_path.extend(holders.get(("node", node), ()))
    of_unit = [bucket for bucket in on_path if bucket.unit == unit]
    return sorted(of_unit, key=bucket_draw_order(at)) if len(of_unit) > 1 else of_unit


def bucket_draw_order(at: datetime):
    return lambda b: (b.priority, b.valid_until is None, b.valid_until or at, b.pk)


def _usable(*, bucket: Bucket, ctx: ChargingContext) -> bool:
    held_on_path = bucket.line_id == ctx.line.pk or bucket.cost_centre_id in ctx.path_ids
    return held_on_path and bucket.unit == ctx.unit and bucket.is_valid_at(ctx.at) and not ctx.steered_personal


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


def _roll_spending_period(*, balance: MoneyBalance, at: datetime) -> None:
    start = period_start(period="month", at=at)
    if balance.period_start is None or balance.period_start < start:
        balance.period_spent = Decimal(0)
        balance.period_start = start
        MoneyBalance.objects.filter(pk=balance.pk).update(period_spent=0, period_start=start)
