"""Settling usage: moving balances and limits by what was used, with one ledger entry per
balance that moved. Shared by online sessions, single events and offline records; works on
rows the caller locked (``charging.locks.lock_for``) and writes them back once.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from charging import live
from charging.context import ChargingContext
from charging.grants import OVERAGE, HoldPlan, plan_grant
from charging.ledger import Kind, bucket_entry, ledger_write, money_entry
from charging.locks import Locked
from charging.models import Bucket, MoneyBalance, NodeLimit
from charging.periods import limit_count
from charging.rating import rate
from charging.thresholds import thresholds_check
from charging.units import USAGE_REASON
from portal.db.rows import rows_update
from portal.money import MONEY_QUANTUM


@dataclass
class Settled:
    units: int = 0
    from_allowances: int = 0
    amount: Decimal = Decimal(0)


def settle(
    *,
    ctx: ChargingContext,
    locked: Locked,
    holds: list[HoldPlan],
    limit_ids: list[int],
    reserved_units: int,
    used: int,
    reference: str,
    session_used: int,
    usage_event_id: int | None = None,
    rated_from: datetime | None = None,
) -> Settled:
    """Takes ``used`` units from the holds in their order and releases the rest of each hold,
    with one ledger entry per balance that moved (written by ``locked_save`` with the counters)."""
    settled = Settled(units=used)
    left = used
    entries = []
    reason = USAGE_REASON[ctx.service]

    about = {"reference": reference, "usage_event_id": usage_event_id, "at": ctx.at}

    for hold in holds:
        take = min(hold.units, left)
        left -= take
        if hold.bucket_id:
            bucket = locked.buckets[hold.bucket_id]
            bucket.reserved -= hold.units if reserved_units else 0
            if take:
                bucket.remaining -= take
                settled.from_allowances += take
                entries.append(bucket_entry(bucket=bucket, kind=Kind.USAGE, units=-take, reason=reason, **about))
            continue
        balance = locked.money[hold.account_id]
        balance.reserved -= hold.amount if reserved_units else 0
        if not take:
            continue
        amount = money_for(
            ctx=ctx,
            hold=hold,
            units=take,
            session_used=session_used + used - left - take,
            started_at=rated_from or ctx.at,
        )
        balance.amount -= amount
        balance.period_spent += amount
        settled.amount += amount
        over = " over the limit" if hold.price_key == OVERAGE else ""
        entries.append(money_entry(balance=balance, kind=Kind.USAGE, amount=-amount, reason=reason + over, **about))
    for limit_id in limit_ids:
        limit = locked.limits_by_id[limit_id]  # a KeyError here is a hold the caller forgot to lock: never skip it
        limit.reserved -= reserved_units
        limit_count(limit, units=used, at=ctx.at)
    locked.ledger.extend(entries)  # written with the counters, by ``locked_save``
    return settled


def charge_used(
    *,
    ctx: ChargingContext,
    locked: Locked,
    used: int,
    reference: str,
    session_used: int = 0,
    usage_event_id: int | None = None,
    rated_from: datetime | None = None,
) -> Settled:
    """Charges usage that already happened (an offline record, a late report): planned with
    nothing blocked and settled at once, with no hold in between."""
    plan = plan_grant(ctx=ctx, locked=locked, requested=used, session_used=session_used, must_charge=True)
    return settle(
        ctx=ctx,
        locked=locked,
        holds=plan.holds,
        limit_ids=plan.limit_ids,
        reserved_units=0,
        used=used,
        reference=reference,
        session_used=session_used,
        usage_event_id=usage_event_id,
        rated_from=rated_from,
    )


def money_for(*, ctx: ChargingContext, hold: HoldPlan, units: int, session_used: int, started_at: datetime) -> Decimal:
    """What ``units`` of a money hold cost, never more than the hold: tariff usage is rated
    again (increments, bands); overage is priced pro rata, rounded up."""
    if units == hold.units:
        return hold.amount
    if hold.price_key == OVERAGE or ctx.tariff is None:
        return (hold.amount * units / hold.units).quantize(MONEY_QUANTUM, rounding=ROUND_CEILING)
    rated = rate(
        tariff=ctx.tariff,
        rates=ctx.rates,
        zone=ctx.zone,
        started_at=started_at,
        units=units,
        session_used=session_used,
        period_used=ctx.period_used + session_used,
    )
    return min(rated.amount, hold.amount)


def locked_save(locked: Locked) -> None:
    """Writes back the counters of the locked rows that moved (they are locked, so no one
    else changed them since they were read), a few statements per table however many moved."""
    moved = {key for key, counters in locked.counters() if locked.as_read.get(key) != counters}
    limits = [limit for limit in locked.limits if ("limit", limit.pk) in moved]
    buckets = [bucket for bucket in locked.buckets.values() if ("bucket", bucket.pk) in moved]
    money = [balance for balance in locked.money_if_locked() if ("money", balance.pk) in moved]
    rows_update(NodeLimit, limits, ["used", "reserved", "in_store"])
    rows_update(Bucket, buckets, ["remaining", "reserved", "in_store"])
    rows_update(MoneyBalance, money, ["amount", "reserved", "period_spent"])
    ledger_write(locked.ledger)
    locked.ledger.clear()


def after_settlement(*, ctx: ChargingContext, locked: Locked, at: datetime) -> None:
    """Inside the transaction: threshold notices for what moved; after commit: the live push."""
    thresholds_check(buckets=locked.buckets.values(), limits=locked.limits, at=at)
    live.changed_on_commit(
        line_ids=[ctx.line.pk], node_ids=ctx.cost_centre_ids, line_accounts={ctx.line.pk: ctx.line.billing_account_id}
    )
