"""Online sessions charged in the quota store, falling back to the database when they must.

Each request is one script call (``session_step.lua``). When a counter's slice is short, the
database hands it another (``slices_take``) and the step runs again; when the database has no
more, the step grants what every limit still allows and says it is the last grant. A
session whose allowances run out is handed to the database, which charges money from there
on; a request for a session the store does not hold goes to the database as it is.
"""

import json
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from charging.locks import session_handover_lock
from charging.online import database
from charging.quota import store
from charging.quota.log import log_apply_now
from charging.quota.profiles import Mode, Profile, line_profile
from charging.quota.slices import short_refill
from charging.quota.store import ROUNDS, keep_seconds
from charging.requests import ChargingError, active_line, check_most, grant_validity

NO_COUNTERS = Profile(mode=Mode.QUOTA)  # for steps that grant nothing new
PROFILE_NEEDED = object()  # a step's outcome: read the line's profile, then step again


@dataclass(frozen=True)
class Request:
    """One online request as the store sees it; ``requested`` is None for a terminate."""

    op: str  # start, update, terminate, handover, expire
    key: str
    source: str
    session_id: str
    at: datetime
    number: int = 0
    used: int = 0
    requested: int | None = 0


def session_start(*, key, source, session_id, msisdn, service, zone, requested_units, at: datetime | None) -> dict:
    request = Request("start", key, source, session_id, at or timezone.now(), requested=requested_units)
    meta = {
        "reference": f"session:{source}:{session_id}",
        "source": source,
        "session_id": session_id,
        "msisdn": msisdn,
        "service": service,
        "zone": zone,
        "opened_at": request.at.isoformat(),
    }
    # The step reads the line's profile in the store itself: one round trip, most of the time.
    outcome = _granting_step(request, profile=NO_COUNTERS, meta=json.dumps(meta), profile_key=(msisdn, service))
    if outcome is PROFILE_NEEDED:
        profile = line_profile(msisdn=msisdn, service=service, at=request.at)
        if profile.mode in (Mode.UNKNOWN, Mode.INACTIVE):
            active_line(msisdn, service=service)  # says why, as the database path would
        outcome = None
        if profile.mode == Mode.QUOTA:
            meta.update(line=profile.line_id, nodes=profile.node_ids)
            outcome = _granting_step(request, profile=profile, meta=json.dumps(meta))
    if outcome is not None:
        return outcome
    if not _claim_for_database(request):
        # The store opened it meanwhile (a twin of this request): its answer, or a refusal.
        outcome = _granting_step(replace(request, requested=0), profile=NO_COUNTERS)
        if outcome is not None:
            return outcome
    return database.session_start_in_database(
        key=key,
        source=source,
        session_id=session_id,
        msisdn=msisdn,
        service=service,
        zone=zone,
        requested_units=requested_units,
        at=request.at,
    )


def session_continue(*, key, source, session_id, request_number, used, requested, at: datetime | None) -> dict:
    """An update (``requested`` may be 0) or, with ``requested`` None, a terminate."""
    op = "terminate" if requested is None else "update"
    request = Request(op, key, source, session_id, at or timezone.now(), request_number, used, requested)
    profile = NO_COUNTERS
    if requested:
        meta = store.client().hget(store.session_key(source, session_id), "meta")
        if meta is not None:
            details = json.loads(meta)
            check_most(service=details["service"], requested_units=requested)
            profile = line_profile(msisdn=details["msisdn"], service=details["service"], at=request.at)
            if profile.mode != Mode.QUOTA:
                return _hand_over(request)
    outcome = _granting_step(request, profile=profile)
    if outcome is None:  # the allowances no longer cover it: the database charges money from here on
        return _hand_over(request)
    return outcome


def _granting_step(
    request: Request, *, profile: Profile, meta: str = "", profile_key: tuple[str, str] | None = None
) -> dict | object | None:
    """Runs the step, refilling short counters between rounds; None when money is needed (or,
    for a start, the database holds the session). With ``profile_key`` (MSISDN and service)
    the step takes its counters from the line's profile in the store; ``PROFILE_NEEDED`` when
    it holds none that it can use."""
    final = False
    for round_ in range(ROUNDS):
        result = _step(request, profile=profile, final=final, meta=meta, profile_key=profile_key)
        kind = result[0].decode()
        if kind == "profile":
            return PROFILE_NEEDED
        if kind == "answer":
            return answer_from(result[1].decode(), session_id=request.session_id)
        if kind == "money":
            return None
        if kind == "database" and request.op == "start":
            return None  # a twin of this start is opening it there: the caller opens it the same way
        if kind in ("unknown", "database", "late"):
            return _in_database(request, late=kind == "late")
        if kind == "error":
            raise _refusal(result, request=request)
        final = short_refill(counters=result[1:], wanted=request.requested, at=request.at) or round_ == ROUNDS - 2
    raise AssertionError("the last round is final and always answers")


def _step(
    request: Request,
    *,
    profile: Profile,
    final: bool = True,
    meta: str = "",
    profile_key: tuple[str, str] | None = None,
) -> list:
    keys = [
        store.session_key(request.source, request.session_id),
        store.answer_key(request.key),
        store.log_key(),
        store.expiry_key(),
    ]
    if profile_key is not None:  # the counters are the profile's, read by the script
        keys += [store.profile_key(*profile_key), store.epoch_key()]
    args = [
        request.op,
        request.number,
        request.used,
        request.requested or 0,
        len(profile.limit_keys),
        len(profile.bucket_keys),
        int(final),
        f"{request.at.timestamp():.3f}",
        int(grant_validity().total_seconds()),
        meta,
        request.at.isoformat(),
        keep_seconds(),
        "profile" if profile_key is not None else "",
    ]
    return store.session_step(keys=keys + profile.limit_keys + profile.bucket_keys, args=args)


@transaction.atomic
def _hand_over(request: Request) -> dict:
    """Settles the session's use of its allowances here and opens it in the database, which
    grants the request (in money, or whatever the database path decides) from now on. Twins
    of the request wait on the hand-over lock until the session is in the database."""
    session_handover_lock(source=request.source, session_id=request.session_id)
    result = _step(replace(request, op="handover"), profile=NO_COUNTERS)
    kind = result[0].decode()
    if kind == "answer":
        return answer_from(result[1].decode(), session_id=request.session_id)
    if kind == "error":
        raise _refusal(result, request=request)
    if kind != "handover":
        return _in_database(request, late=kind == "late")
    total, settled, meta = int(result[1]), int(result[2]), json.loads(result[3])
    return database.session_adopt(
        key=request.key,
        source=request.source,
        session_id=request.session_id,
        line_id=meta["line"],
        service=meta["service"],
        zone=meta["zone"],
        opened_at=datetime.fromisoformat(meta["opened_at"]),
        request_number=request.number,
        used_in_all=total,
        used_now=settled,
        requested=request.requested or 0,
        at=request.at,
    )


def _in_database(request: Request, *, late: bool = False) -> dict:
    """A request the database answers: for a session it holds, or one that expired here (it
    learns first how that ended, then charges the late report)."""
    if late:
        log_apply_now()
        store.client().hset(store.session_key(request.source, request.session_id), "status", "db")
    return database.session_continue_in_database(
        key=request.key,
        source=request.source,
        session_id=request.session_id,
        request_number=request.number,
        used=request.used,
        requested=request.requested,
        at=request.at,
    )


def _claim_for_database(request: Request) -> bool:
    """Marks a new session as charged in the database; False if the store already holds it."""
    conn = store.client()
    session = store.session_key(request.source, request.session_id)
    if conn.hsetnx(session, "status", "db"):
        conn.expire(session, keep_seconds())
        return True
    return conn.hget(session, "status") == b"db"


def _refusal(result: list, *, request: Request) -> ChargingError:
    code = result[1].decode()
    if code == "closed":
        return ChargingError("session_closed", f"Session {request.session_id} is terminated.", status=409)
    if code == "out_of_order":
        expected = int(result[2])
        return ChargingError(
            "out_of_order",
            f"Expected request number {expected}, got {request.number}.",
            field="request_number",
            status=409,
        )
    if code == "exceeds":
        return ChargingError(
            "used_exceeds_grant",
            f"Reported {request.used} units but {int(result[2])} were granted.",
            field="used_units",
        )
    return ChargingError(
        "out_of_order", f"Session {request.session_id} was started already.", field="request_number", status=409
    )


def answer_from(stored: str, *, session_id: str) -> dict:
    """The answer, in the shape the database path gives, from what the store kept."""
    status, granted, action, used, from_allowances, answered_at, number = stored.split("|")
    return {
        "result": "success",
        "session_id": session_id,
        "request_number": int(number),
        "status": status,
        "granted_units": int(granted),
        "validity_seconds": int(grant_validity().total_seconds()) if int(granted) else 0,
        "final_unit_action": action or None,
        "throttled": False,
        "used_units": int(used),
        "units_from_allowances": int(from_allowances),
        "amount": "0",
        "answered_at": answered_at,
    }


def sessions_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Ends the store's sessions whose grant lapsed (or that went quiet): their units go back
    to the slices. Returns how many ended."""
    now = now or timezone.now()
    conn = store.client()
    lapsed = conn.zrangebyscore(store.expiry_key(), "-inf", f"{now.timestamp():.3f}", start=0, num=limit)
    ended = 0
    for session in lapsed:
        meta = conn.hget(session, "meta")
        if meta is None:
            conn.zrem(store.expiry_key(), session)
            continue
        details = json.loads(meta)
        request = Request("expire", f"expiry:{session.decode()}", details["source"], details["session_id"], now)
        outcome = _step(request, profile=NO_COUNTERS)[0]
        if outcome in (b"database", b"unknown"):  # not the store's to end (any more)
            conn.zrem(store.expiry_key(), session)
        ended += outcome == b"expired"
    return ended
