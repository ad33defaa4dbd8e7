"""Whatever the sequence of requests, the engine keeps its books: no blocking limit is ever
passed, holds never exceed what they hold on, every balance equals its ledger, and once every
session has ended nothing stays reserved."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging.events import event_charge
from charging.ledger import ledger_mismatches
from charging.models import Bucket, ChargingSession, NodeLimit
from charging.online import session_start, session_terminate, session_update
from charging.online.database import reservations_expire
from charging.periods import period_start
from charging.requests import ChargingError
from tests.charging.trees import MB, company_tree, limit_on
from tests.factories import allowances_valid_from

pytestmark = pytest.mark.django_db

operations = st.lists(
    st.tuples(
        st.sampled_from(["start", "update", "terminate", "event", "expire"]),
        st.integers(min_value=0, max_value=2),  # which line
        st.integers(min_value=0, max_value=12),  # MB asked for
        st.floats(min_value=0, max_value=1),  # share of the grant used
    ),
    min_size=1,
    max_size=25,
)


def books_are_whole(pool: Bucket) -> None:
    pool.refresh_from_db()
    assert 0 <= pool.reserved <= pool.remaining
    for limit in NodeLimit.objects.all():
        assert limit.reserved >= 0
        assert limit.used + limit.reserved <= limit.limit
    assert ledger_mismatches() == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_any_sequence_of_requests_keeps_limits_holds_and_ledger_whole(ops):
    with transaction.atomic():
        tree = company_tree(lines=3, pool_units=40 * MB)
        limit_on(tree.team, 30 * MB)
        limit_on(tree.devices[0], 8 * MB)
        open_sessions: dict[int, tuple[str, int, int]] = {}  # line -> (session id, next request, granted)
        # A clock early in this month, so even a long run of hour-long expiries stays in one period.
        month = period_start(period="month", at=timezone.now())
        allowances_valid_from([tree.pool], month)
        clock = month + timedelta(days=1)
        refusals: list[str] = []
        for step, (kind, which, megabytes, share) in enumerate(ops):
            msisdn = tree.lines[which].msisdn
            clock += timedelta(seconds=1)
            try:
                if kind == "start" and which not in open_sessions:
                    answer = session_start(
                        session_id=f"p{step}", msisdn=msisdn, service="data", requested_units=megabytes * MB, at=clock
                    )
                    open_sessions[which] = (f"p{step}", 1, answer["granted_units"])
                elif kind in ("update", "terminate") and which in open_sessions:
                    session_id, number, granted = open_sessions.pop(which)
                    used = int(granted * share)
                    if kind == "update":
                        answer = session_update(
                            session_id=session_id,
                            request_number=number,
                            used_units=used,
                            requested_units=megabytes * MB,
                            at=clock,
                        )
                        open_sessions[which] = (session_id, number + 1, answer["granted_units"])
                    else:
                        session_terminate(session_id=session_id, request_number=number, used_units=used, at=clock)
                elif kind == "event":
                    event_charge(event_id=f"e{step}", msisdn=msisdn, service="data", units=megabytes * MB + 1, at=clock)
                elif kind == "expire":
                    clock += timedelta(hours=1)
                    reservations_expire(now=clock)
                    open_sessions.clear()
            except ChargingError as refused:
                refusals.append(refused.code)
            books_are_whole(tree.pool)

        assert set(refusals) <= {"limit_reached", "insufficient_balance"}  # an event past what is left
        for session_id, number, _ in open_sessions.values():
            session_terminate(session_id=session_id, request_number=number, used_units=0, at=clock)
        tree.pool.refresh_from_db()
        assert tree.pool.reserved == 0
        assert all(limit.reserved == 0 for limit in NodeLimit.objects.all())
        assert not ChargingSession.objects.filter(status=ChargingSession.Status.OPEN).exists()
        # Every line sits in the team and draws only on the pool: the team counted all of it.
        assert NodeLimit.objects.get(node=tree.team).used == 40 * MB - tree.pool.remaining
        transaction.set_rollback(True)
