"""Headroom traded between two teams while their lines charge, on PostgreSQL with real
concurrent workers: the two limits always add up to the same, no limit is passed, nothing
deadlocks, and the ledger reconciles. Sessions are charged in the database, and again
through the quota store, whose slices of a limit count as reserved in the database."""

import random
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from charging.allocation import node_headroom_move
from charging.ledger import ledger_mismatches
from charging.models import ChargingSession, NodeLimit
from charging.online import session_start, session_terminate, session_update
from charging.units import Unit
from enterprise.models import CostCentre
from enterprise.services import cost_centre_create
from portal.models import AuditEntry
from portal.services import line_create
from tests.charging.quota import quota_store, settle_store  # noqa: F401 - the fixture
from tests.charging.trees import MB, company_tree, limit_on
from tests.concurrency import run_together
from tests.factories import UserFactory
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["database", "quota store"])
def engine(request):
    """Where sessions are charged; ``settle()`` brings the database up to date afterwards."""
    if request.param == "database":
        return lambda: None
    request.getfixturevalue("quota_store")
    return settle_store


CHARGERS = 8
TRADERS = 4
TRADES_EACH = 25


def charge_until_refused(msisdn: str, seed: int) -> int:
    """Sessions one after another, reporting in pieces, until three grants in a row are
    refused (or 200 sessions); returns how many sessions were granted something."""
    rng = random.Random(seed)
    refused, granted_sessions = 0, 0
    for number in range(200):
        session_id = f"c{seed}-{number}"
        granted = session_start(
            session_id=session_id, msisdn=msisdn, service="data", requested_units=rng.randint(1, 4) * MB
        )["granted_units"]
        if granted == 0:
            session_terminate(session_id=session_id, request_number=1, used_units=0)
            refused += 1
            if refused == 3:
                break
            continue
        refused, granted_sessions = 0, granted_sessions + 1
        more = session_update(
            session_id=session_id, request_number=1, used_units=rng.randint(0, granted), requested_units=granted
        )["granted_units"]
        session_terminate(session_id=session_id, request_number=2, used_units=more)
    return granted_sessions


def test_trading_headroom_under_concurrent_charging_keeps_the_total_and_every_limit(engine):
    require_postgres()
    tree = company_tree(lines=0, pool_units=2000 * MB)
    teams = [cost_centre_create(parent=tree.division, name=name, kind=CostCentre.Kind.TEAM) for name in "AB"]
    limits = [limit_on(team, 60 * MB) for team in teams]
    msisdns = []
    for n in range(CHARGERS):
        line = line_create(billing_account=tree.account, msisdn=f"3177000{n:04d}")
        cost_centre_create(parent=teams[n % 2], name=line.msisdn, kind=CostCentre.Kind.DEVICE, line=line)
        msisdns.append(line.msisdn)
    manager = UserFactory()
    total = sum(limit.limit for limit in limits)
    left = threading.Event()
    finished = [0]
    count_lock = threading.Lock()
    sums_seen: set[int] = set()

    def done() -> None:
        with count_lock:
            finished[0] += 1
            if finished[0] == CHARGERS + TRADERS:
                left.set()

    def charger(n: int):
        try:
            return charge_until_refused(msisdns[n], seed=n)
        finally:
            done()

    def trader(n: int):
        rng = random.Random(100 + n)
        moved = 0
        try:
            for _ in range(TRADES_EACH):
                source, target = rng.sample(teams, 2)
                try:
                    node_headroom_move(
                        source=source,
                        target=target,
                        unit=Unit.BYTES,
                        amount=rng.randint(1, 15) * MB,
                        reason="Rebalance",
                        actor=manager,
                    )
                    moved += 1
                except ValidationError:
                    pass  # not that much free at the moment: refused, nothing changed
            return moved
        finally:
            done()

    def observer():
        # One statement sees one snapshot of both rows: their sum must never be seen changed.
        while not left.is_set():
            with connection.cursor() as cursor:
                cursor.execute(
                    'SELECT SUM("limit") FROM charging_nodelimit WHERE id IN (%s, %s)', [limits[0].pk, limits[1].pk]
                )
                sums_seen.add(int(cursor.fetchone()[0]))
        return None

    results = run_together(
        [lambda n=n: charger(n) for n in range(CHARGERS)] + [lambda n=n: trader(n) for n in range(TRADERS)] + [observer]
    )

    engine()

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    moves = sum(results[CHARGERS : CHARGERS + TRADERS])
    assert moves > 0
    assert sums_seen == {total}
    after = {limit.node_id: limit for limit in NodeLimit.objects.filter(pk__in=[limits[0].pk, limits[1].pk])}
    assert sum(limit.limit for limit in after.values()) == total
    for team in teams:
        limit = after[team.pk]
        used = sum(ChargingSession.objects.filter(line__cost_centre__parent=team).values_list("used_units", flat=True))
        assert limit.reserved == 0
        assert limit.used == used
        assert limit.used <= limit.limit
    assert AuditEntry.objects.filter(action="node_limit.move").count() == 2 * moves
    assert ledger_mismatches() == []
