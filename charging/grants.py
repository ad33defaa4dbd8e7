"""Deciding a grant: which balances and limits a usage may draw on, and how much of each.

A grant walks the line's path in the cost-centre tree (root first), takes what every limit on
it allows, then draws units from allowances (the line's own and the pools of its ancestors,
by priority then soonest expiry) and the rest from money at the tariff. Past a limit, the
limit's policy decides: block, throttle, overage at a price, or the user's personal account.

Everything here works on rows the caller has locked (``charging.locks``), so the plan it
returns still holds when the caller applies it in the same transaction.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from charging.allowances import bucket_draw_order, buckets_of_line, is_usable
from charging.context import ChargingContext
from charging.locks import Locked
from charging.models import Bucket, MoneyBalance, NodeLimit, Tariff, TariffRate
from charging.quota import quota_store_enabled
from charging.quota.slices import slices_reclaim_locked
from charging.rating import affordable_units, rate


class FinalUnitAction:
    """What the network does when the granted units run out (RFC 4006 Final-Unit-Action)."""

    TERMINATE = "terminate"  # blocked by a limit, or nothing left to draw on
    REDIRECT = "redirect"  # out of money: send the user to the top-up page
    RESTRICT = "restrict"  # throttled past a limit


TARIFF = "tariff"
OVERAGE = "overage"


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
    if quota_store_enabled():
        # The quota store may hold what this charge lacks, in slices nobody uses yet: call
        # them back (once per row and transaction) rather than refuse or charge money for it.
        short = _short_in_store(ctx=ctx, locked=locked, limits=limits, requested=requested)
        if short:
            slices_reclaim_locked(short)
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
        if not is_usable(bucket=bucket, ctx=ctx):
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
    usable = [b for b in locked.buckets.values() if is_usable(bucket=b, ctx=ctx)]
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
    return buckets_of_line(
        holders=locked.buckets_by_holder(), line_id=ctx.line.pk, path_ids=ctx.path_ids, unit=ctx.unit, at=ctx.at
    )
