"""Single events charged online: an SMS, a content purchase at its price, charged whole or
not at all, and their refunds. Event ids are unique per source; a repeat gets the first
answer."""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from charging import live
from charging.context import charging_context
from charging.grants import plan_grant
from charging.ledger import ledger_write, refund_entry
from charging.locks import lock_for
from charging.models import ChargingRequest, LedgerEntry, Tariff
from charging.quota import events as quota_events
from charging.quota import quota_store_enabled
from charging.quota.log import log_apply_now
from charging.requests import (
    NETWORK,
    ChargingError,
    active_line,
    answer_once,
    answer_remember,
    check_most,
    check_service_and_zone,
    check_units,
    event_key,
    stored_answer,
)
from charging.settlement import after_settlement, locked_save, settle
from charging.units import Zone
from portal.models import Line
from portal.money import money


def event_charge(
    *,
    event_id: str,
    msisdn: str,
    service: str,
    units: int = 1,
    zone: str = Zone.HOME,
    price: Decimal | None = None,
    source: str = NETWORK,
    at: datetime | None = None,
) -> dict:
    """Charges a single event (an SMS, a content purchase at ``price``) whole, or not at all.
    Event ids are unique per ``source``."""
    check_service_and_zone(service=service, zone=zone)
    check_units(units=units)
    check_most(service=service, units=units)
    if price is not None and money(price) < 0:
        raise ChargingError("invalid", "A price cannot be negative.", field="price")
    key = event_key(source, event_id)
    if price is None and quota_store_enabled():
        # An event the allowances cover is charged in the quota store, once: not if the
        # database charged it before (a repeat, maybe from before the store was on).
        answer = stored_answer(key) or quota_events.event_charge(
            key=key, event_id=event_id, msisdn=msisdn, service=service, units=units, at=at or timezone.now()
        )
        if answer is not None:
            return answer
    return answer_once(key, lambda: _event_charge(key, event_id, msisdn, service, units, zone, price, at))


def _event_charge(key, event_id, msisdn, service, units, zone, price, at) -> dict:
    at = at or timezone.now()
    line = active_line(msisdn, service=service)
    ctx = charging_context(line=line, service=service, zone=zone, at=at)
    if price is not None:
        # A content purchase is priced by the item sold, not by a tariff, and no allowance covers it.
        ctx.tariff = Tariff(price=money(price), per_units=units, increment=1)
        ctx.rates = []
    locked = lock_for(ctx=ctx)
    if price is not None:
        locked.buckets = {}
    plan = plan_grant(ctx=ctx, locked=locked, requested=units)
    if plan.units < units:
        code = "limit_reached" if plan.final_unit_action == "terminate" and locked.limits else "insufficient_balance"
        raise ChargingError(code, f"Only {plan.units} of {units} units can be charged.", status=402)
    settled = settle(
        ctx=ctx,
        locked=locked,
        holds=plan.holds,
        limit_ids=plan.limit_ids,
        reserved_units=0,
        used=units,
        reference=key,
        session_used=0,
    )
    locked_save(locked)
    answer = {
        "result": "success",
        "event_id": event_id,
        "line": line.pk,
        "service": service,
        "units": units,
        "units_from_allowances": settled.from_allowances,
        "amount": str(settled.amount),
        "limits": plan.limit_ids,
        "charged_at": at.isoformat(),
    }
    answer_remember(key, "event", answer)
    after_settlement(ctx=ctx, locked=locked, at=at)
    return answer


def event_refund(
    *, event_id: str, reason: str = "", actor=None, source: str = NETWORK, at: datetime | None = None
) -> dict:
    """Gives back what a single event took: allowance units to their buckets, money to its
    balance, and the units to the limits they counted against. Once per event."""
    charged_key = event_key(source, event_id)
    key = f"refund:{charged_key}"
    if quota_store_enabled():
        log_apply_now()  # an event charged in the quota store reaches the database with its log
    return answer_once(key, lambda: _event_refund(key, charged_key, event_id, reason, actor, at))


def _event_refund(key, charged_key, event_id, reason, actor, at) -> dict:
    at = at or timezone.now()
    charged = ChargingRequest.objects.filter(key=charged_key).first()
    if charged is None:
        raise ChargingError("unknown_event", f"No charged event {event_id}.", field="event_id", status=404)
    entries = list(LedgerEntry.objects.filter(reference=charged_key, kind=LedgerEntry.Kind.USAGE))
    line = Line.objects.get(pk=charged.answer["line"])
    ctx = charging_context(line=line, service=charged.answer["service"], zone=Zone.HOME, at=at)
    locked = lock_for(
        ctx=ctx,
        bucket_ids={e.bucket_id for e in entries if e.bucket_id},
        account_ids={e.billing_account_id for e in entries if e.money_balance_id},
        limit_ids=set(charged.answer["limits"]),
    )
    refunds = []
    for entry in entries:
        if entry.bucket_id:
            bucket = locked.buckets[entry.bucket_id]
            bucket.remaining -= entry.units  # a usage entry's units are negative
        else:
            balance = locked.money[entry.billing_account_id]
            balance.amount -= entry.amount
            balance.period_spent = max(Decimal(0), balance.period_spent + entry.amount)
        refunds.append(
            refund_entry(
                of=entry,
                reference=key,
                reason=reason or f"Refund of event {event_id}",
                actor_id=actor.pk if actor else None,
                at=at,
            )
        )
    charged_at = datetime.fromisoformat(charged.answer["charged_at"])
    for limit in locked.limits:
        if limit.pk in charged.answer["limits"] and limit.period_start <= charged_at:
            limit.used = max(0, limit.used - charged.answer["units"])
    ledger_write(refunds)
    locked_save(locked)
    answer = {
        "result": "success",
        "event_id": event_id,
        "units_returned": -sum(e.units for e in entries),
        "amount_returned": str(-sum((e.amount for e in entries), Decimal(0))),
    }
    answer_remember(key, "refund", answer)
    live.changed_on_commit(line_ids=[line.pk], node_ids=ctx.cost_centre_ids)
    return answer
