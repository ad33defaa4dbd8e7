"""Online sessions charged in the database.

Each request is one transaction that locks what it touches in the global order of
``charging.locks``; side effects (live pushes, notices) leave after commit. The quota store
hands sessions over here (``session_adopt``) when their allowances no longer cover them.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from charging import live
from charging.context import charging_context
from charging.grants import GrantPlan, HoldPlan, plan_grant
from charging.locks import Locked, charging_session_lock, charging_session_lock_by_pk, lock_for, session_handover_lock
from charging.models import ChargingSession, Reservation, ReservationHold
from charging.quota import quota_store_enabled
from charging.requests import (
    ChargingError,
    active_line,
    answer_once,
    answer_remember,
    check_most,
    grant_validity,
    line_barred,
)
from charging.settlement import Settled, after_settlement, charge_used, locked_save, settle


def session_start_in_database(*, key, source, session_id, msisdn, service, zone, requested_units, at) -> dict:
    return answer_once(key, lambda: _session_start(key, source, session_id, msisdn, service, zone, requested_units, at))


def session_continue_in_database(*, key, source, session_id, request_number, used, requested, at) -> dict:
    """An update, or with ``requested`` None a terminate, of a session charged in the database."""
    return answer_once(key, lambda: _session_continue(key, source, session_id, request_number, used, requested, at))


def session_adopt(
    *, key, source, session_id, line_id, service, zone, opened_at, request_number, used_in_all, used_now, requested, at
) -> dict:
    """Opens in the database a session the quota store hands over when its allowances no
    longer cover it (the store settled its usage: ``used_in_all`` units, ``used_now`` of them
    reported by this request): from this request on, the database grants it, in money or as
    its limits' policies say."""
    with transaction.atomic():
        session = ChargingSession.objects.create(
            source=source,
            session_id=session_id,
            line_id=line_id,
            service=service,
            zone=zone,
            request_number=request_number,
            used_units=used_in_all,
            opened_at=opened_at,
            updated_at=at,
        )
        ctx = charging_context(line=session.line, service=service, zone=zone, at=at, session_id=session.pk)
        locked = lock_for(ctx=ctx)
        if requested and line_barred(line_id=line_id, service=service):
            plan = GrantPlan(requested=requested, final_unit_action="terminate")  # held since it started: no more
        else:
            plan = plan_grant(ctx=ctx, locked=locked, requested=requested, session_used=used_in_all)
        _hold(session=session, plan=plan, locked=locked, at=at)
        locked_save(locked)
        settled = Settled(units=used_now, from_allowances=used_now)
        answer = _answer(session=session, request_number=request_number, plan=plan, settled=settled, at=at)
        answer_remember(key, "update", answer)
        live.changed_on_commit(line_ids=[line_id], node_ids=ctx.cost_centre_ids)
    return answer


def _session_start(key, source, session_id, msisdn, service, zone, requested, at) -> dict:
    at = at or timezone.now()
    line = active_line(msisdn, service=service)
    # The new row is this transaction's until it commits: a twin start waits on its unique key.
    session = ChargingSession.objects.create(
        source=source, session_id=session_id, line=line, service=service, zone=zone, opened_at=at, updated_at=at
    )
    ctx = charging_context(line=line, service=service, zone=zone, at=at, session_id=session.pk)
    locked = lock_for(ctx=ctx)
    plan = plan_grant(ctx=ctx, locked=locked, requested=requested)
    _hold(session=session, plan=plan, locked=locked, at=at)
    locked_save(locked)
    answer = _answer(session=session, request_number=0, plan=plan, settled=Settled(), at=at)
    answer_remember(key, "initial", answer)
    live.changed_on_commit(line_ids=[line.pk], node_ids=ctx.cost_centre_ids)
    return answer


def _session_continue(key, source, session_id, request_number, used, requested, at) -> dict:
    at = at or timezone.now()
    if quota_store_enabled():
        session_handover_lock(source=source, session_id=session_id)  # it may be on its way from the store
    session = charging_session_lock(source=source, session_id=session_id)
    if session is None:
        raise ChargingError("unknown_session", f"No session {session_id}.", field="session_id", status=404)
    if session.status == ChargingSession.Status.TERMINATED:
        raise ChargingError("session_closed", f"Session {session_id} is {session.status}.", status=409)
    if request_number != session.request_number + 1:
        raise ChargingError(
            "out_of_order",
            f"Expected request number {session.request_number + 1}, got {request_number}.",
            field="request_number",
            status=409,
        )
    check_most(service=session.service, requested_units=requested)
    if session.status == ChargingSession.Status.EXPIRED:
        return _late_report(key=key, session=session, request_number=request_number, used=used, at=at)
    reservation = session.reservations.filter(status=Reservation.Status.OPEN).first()
    granted = reservation.units if reservation else 0
    if used > granted:
        raise ChargingError(
            "used_exceeds_grant", f"Reported {used} units but {granted} were granted.", field="used_units"
        )
    ctx = charging_context(line=session.line, service=session.service, zone=session.zone, at=at, session_id=session.pk)
    holds = list(reservation.holds.select_related("money_balance")) if reservation else []
    locked = lock_for(
        ctx=ctx,
        bucket_ids={h.bucket_id for h in holds if h.bucket_id},
        account_ids={h.money_balance.billing_account_id for h in holds if h.money_balance_id},
        limit_ids={h.limit_id for h in holds if h.limit_id},
    )
    settled = Settled()
    if reservation is not None:
        settled = settle(
            ctx=ctx,
            locked=locked,
            holds=[_as_plan(h) for h in holds if not h.limit_id],
            limit_ids=[h.limit_id for h in holds if h.limit_id],
            reserved_units=reservation.units,
            used=used,
            reference=_session_reference(session),
            session_used=session.used_units,
            rated_from=reservation.granted_at,
        )
        reservation.status = Reservation.Status.SETTLED
        reservation.save(update_fields=["status"])
    plan = GrantPlan(requested=0)
    if requested and line_barred(line_id=session.line_id, service=session.service):
        plan = GrantPlan(requested=requested, final_unit_action="terminate")  # held since it started: no more
    elif requested:
        plan = plan_grant(ctx=ctx, locked=locked, requested=requested, session_used=session.used_units + used)
        _hold(session=session, plan=plan, locked=locked, at=at)
    locked_save(locked)
    return _session_answered(
        key=key,
        session=session,
        request_number=request_number,
        used=used,
        settled=settled,
        plan=plan,
        at=at,
        ends=requested is None,
        ctx=ctx,
        locked=locked,
    )


def _late_report(*, key, session: ChargingSession, request_number: int, used: int, at: datetime) -> dict:
    """Usage reported after the session's grant expired and was released. It happened, so it
    is charged like an offline record (nothing blocked, limits counted), up to what the last
    grant allowed; the session stays ended and grants nothing more."""
    last = session.reservations.filter(status=Reservation.Status.EXPIRED).order_by("-granted_at").first()
    granted = last.units if last else 0
    if used > granted:
        raise ChargingError(
            "used_exceeds_grant", f"Reported {used} units but {granted} were granted.", field="used_units"
        )
    ctx = charging_context(line=session.line, service=session.service, zone=session.zone, at=at, session_id=session.pk)
    locked = lock_for(ctx=ctx)
    settled = charge_used(
        ctx=ctx,
        locked=locked,
        used=used,
        reference=_session_reference(session),
        session_used=session.used_units,
        rated_from=last.granted_at if last else at,
    )
    locked_save(locked)
    return _session_answered(
        key=key,
        session=session,
        request_number=request_number,
        used=used,
        settled=settled,
        plan=GrantPlan(requested=0),
        at=at,
        ends=False,
        ctx=ctx,
        locked=locked,
    )


def _session_answered(*, key, session, request_number, used, settled, plan, at, ends: bool, ctx, locked) -> dict:
    session.request_number = request_number
    session.used_units += used
    session.amount_charged += settled.amount
    session.updated_at = at
    if ends and session.status == ChargingSession.Status.OPEN:
        session.status = ChargingSession.Status.TERMINATED
    session.save(update_fields=["request_number", "used_units", "amount_charged", "updated_at", "status"])
    answer = _answer(session=session, request_number=request_number, plan=plan, settled=settled, at=at)
    answer_remember(key, "terminate" if ends else "update", answer)
    after_settlement(ctx=ctx, locked=locked, at=at)
    return answer


def _session_reference(session: ChargingSession) -> str:
    return f"session:{session.source}:{session.session_id}"


# --- Expiry -----------------------------------------------------------------------------------------


def reservations_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Ends the sessions that stopped reporting: those whose grant expired (its units are
    released) and those holding no grant that were idle as long. Returns how many ended.

    Each ends in its own transaction, so one slow session does not hold up the rest.
    """
    now = now or timezone.now()
    lapsed = Reservation.objects.filter(status=Reservation.Status.OPEN, expires_at__lte=now).values_list(
        "session_id", flat=True
    )
    idle = (
        ChargingSession.objects.filter(status=ChargingSession.Status.OPEN, updated_at__lte=now - grant_validity())
        .exclude(reservations__status=Reservation.Status.OPEN)
        .values_list("pk", flat=True)
    )
    due = list(lapsed[:limit]) + list(idle[:limit])
    return sum(1 for session_pk in due if _session_expire(session_pk=session_pk, now=now))


@transaction.atomic
def _session_expire(*, session_pk: int, now: datetime) -> bool:
    session = charging_session_lock_by_pk(pk=session_pk)
    if session.status != ChargingSession.Status.OPEN:
        return False
    reservation = session.reservations.filter(status=Reservation.Status.OPEN).first()
    if reservation is None:
        if session.updated_at > now - grant_validity():
            return False  # it reported in the meantime
        session.status = ChargingSession.Status.EXPIRED
        session.save(update_fields=["status"])
        return True
    if reservation.expires_at > now:
        return False  # reported in the meantime
    holds = list(reservation.holds.select_related("money_balance"))
    ctx = charging_context(line=session.line, service=session.service, zone=session.zone, at=now)
    locked = lock_for(
        ctx=ctx,
        bucket_ids={h.bucket_id for h in holds if h.bucket_id},
        account_ids={h.money_balance.billing_account_id for h in holds if h.money_balance_id},
        limit_ids={h.limit_id for h in holds if h.limit_id},
    )
    settle(
        ctx=ctx,
        locked=locked,
        holds=[_as_plan(h) for h in holds if not h.limit_id],
        limit_ids=[h.limit_id for h in holds if h.limit_id],
        reserved_units=reservation.units,
        used=0,
        reference=_session_reference(session),
        session_used=session.used_units,
    )
    locked_save(locked)
    reservation.status = Reservation.Status.EXPIRED
    reservation.save(update_fields=["status"])
    session.status = ChargingSession.Status.EXPIRED
    session.updated_at = now
    session.save(update_fields=["status", "updated_at"])
    live.changed_on_commit(line_ids=[session.line_id], node_ids=ctx.cost_centre_ids)
    return True


# --- Holding and settling ---------------------------------------------------------------------------


def _hold(*, session: ChargingSession, plan: GrantPlan, locked: Locked, at: datetime) -> Reservation | None:
    if plan.units == 0:
        return None
    reservation = Reservation.objects.create(
        session=session, units=plan.units, granted_at=at, expires_at=at + grant_validity(), throttled=plan.throttled
    )
    rows = []
    for position, hold in enumerate(plan.holds):
        if hold.bucket_id:
            locked.buckets[hold.bucket_id].reserved += hold.units
        else:
            locked.money[hold.account_id].reserved += hold.amount
        rows.append(
            ReservationHold(
                reservation=reservation,
                position=position,
                bucket_id=hold.bucket_id,
                money_balance_id=locked.money[hold.account_id].pk if hold.account_id else None,
                units=hold.units,
                amount=hold.amount,
                price_key=hold.price_key,
            )
        )
    for offset, limit in enumerate(lim for lim in locked.limits if lim.pk in plan.limit_ids):
        limit.reserved += plan.units
        rows.append(
            ReservationHold(reservation=reservation, position=len(plan.holds) + offset, limit=limit, units=plan.units)
        )
    ReservationHold.objects.bulk_create(rows)
    return reservation


def _as_plan(hold: ReservationHold) -> HoldPlan:
    return HoldPlan(
        units=hold.units,
        bucket_id=hold.bucket_id,
        account_id=hold.money_balance.billing_account_id if hold.money_balance_id else None,
        amount=hold.amount,
        price_key=hold.price_key,
    )


def _answer(*, session: ChargingSession, request_number: int, plan: GrantPlan, settled: Settled, at) -> dict:
    return {
        "result": "success",
        "session_id": session.session_id,
        "request_number": request_number,
        "status": session.status,
        "granted_units": plan.units,
        "validity_seconds": int(grant_validity().total_seconds()) if plan.units else 0,
        "final_unit_action": plan.final_unit_action or None,
        "throttled": plan.throttled,
        "used_units": settled.units,
        "units_from_allowances": settled.from_allowances,
        "amount": str(settled.amount),
        "answered_at": at.isoformat(),
    }
