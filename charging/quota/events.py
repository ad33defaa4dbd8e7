"""Single events (an SMS) charged in the quota store, whole or not at all, with the same
answer the database path gives. An event the allowances cannot cover (money, a content
purchase at its price, a limit reached) is left to the database path, which says why."""

import json
from datetime import datetime

from charging.quota import store
from charging.quota.profiles import Mode, Profile, line_profile
from charging.quota.slices import short_refill
from charging.quota.store import ROUNDS, keep_seconds


def event_charge(*, key: str, event_id: str, msisdn: str, service: str, units: int, at: datetime) -> dict | None:
    """The event's answer, or None when the database path must charge it (it is then marked
    as the database's, so no twin of it is charged here meanwhile)."""
    profile = line_profile(msisdn=msisdn, service=service, at=at)
    if profile.mode != Mode.QUOTA:
        return None
    answer = _charge(key=key, event_id=event_id, service=service, units=units, at=at, profile=profile)
    if answer is not None:
        return answer
    conn = store.client()
    if conn.set(store.answer_key(key), "database", nx=True, ex=keep_seconds()):
        return None
    first = conn.get(store.answer_key(key))
    return None if first in (None, b"database") else json.loads(first)


def _charge(*, key: str, event_id: str, service: str, units: int, at: datetime, profile: Profile) -> dict | None:
    answer = {
        "result": "success",
        "event_id": event_id,
        "line": profile.line_id,
        "service": service,
        "units": units,
        "units_from_allowances": units,
        "amount": "0",
        "limits": [store.counter_of(counter)[1] for counter in profile.limit_keys],
        "charged_at": at.isoformat(),
    }
    meta = {"reference": key, "line": profile.line_id, "service": service, "nodes": profile.node_ids}
    keys = [store.answer_key(key), store.log_key(), *profile.limit_keys, *profile.bucket_keys]
    final = False
    for round_ in range(ROUNDS):
        args = [units, len(profile.limit_keys), len(profile.bucket_keys), int(final)]
        args += [json.dumps(answer), json.dumps(meta), at.isoformat(), keep_seconds()]
        result = store.event_charge(keys=keys, args=args)
        kind = result[0].decode()
        if kind == "answer":
            return json.loads(result[1])
        if kind in ("money", "database"):
            return None
        final = short_refill(counters=result[1:], wanted=units, at=at) or round_ == ROUNDS - 2
    raise AssertionError("the last round is final and always answers")
