"""Many sessions at once on PostgreSQL drain a small pool through every branch of a tree: no
limit is ever overspent, nothing deadlocks, and the ledger reconciles. Each runs twice: with
sessions charged in the database, and through the quota store (Redis) in front of it."""

import random
import threading
from decimal import Decimal

import pytest
from django.db import connection

from charging.ledger import ledger_mismatches
from charging.models import Bucket, ChargingSession, NodeLimit
from charging.online import session_start, session_terminate, session_update
from charging.services import bucket_grant, money_balance_open, money_post
from charging.units import Unit
from enterprise.models import CostCentre
from enterprise.services import company_create, cost_centre_create
from portal.models import BillingAccount, Customer
from portal.services import billing_account_open, customer_create, line_create
from tests.charging.quota import quota_store, settle_store  # noqa: F401 - the fixture
from tests.concurrency import run_together
from tests.factories import LineFactory, data_bucket, default_data_tariff
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=["database", "quota store"])
def engine(request):
    """Where sessions are charged; ``settle()`` brings the database up to date afterwards."""
    if request.param == "database":
        return lambda: None
    request.getfixturevalue("quota_store")
    return settle_store


MB = 1024**2
WORKERS = 16


def branchy_company():
    """root (pool 180 MB) -> division L (150) -> team A (60) and team B (100), and division
    F (40): together the limits allow 190, more than the pool; lines spread over three teams."""
    customer = customer_create(name="Racy", kind=Customer.Kind.COMPANY, email="telecom@racy.example")
    account = billing_account_open(customer=customer, kind=BillingAccount.Kind.POSTPAID, credit_limit=Decimal(0))
    money_balance_open(billing_account=account)
    company = company_create(customer=customer, name="Racy")
    root = CostCentre.objects.get(company=company, parent=None)
    limited = cost_centre_create(parent=root, name="Limited", kind=CostCentre.Kind.DIVISION)
    free = cost_centre_create(parent=root, name="Free", kind=CostCentre.Kind.DIVISION)
    teams = {
        "a": cost_centre_create(parent=limited, name="A", kind=CostCentre.Kind.TEAM),
        "b": cost_centre_create(parent=limited, name="B", kind=CostCentre.Kind.TEAM),
        "free": cost_centre_create(parent=free, name="F", kind=CostCentre.Kind.TEAM),
    }
    limits = {
        "limited": NodeLimit.objects.create(node=limited, unit=Unit.BYTES, limit=150 * MB),
        "a": NodeLimit.objects.create(node=teams["a"], unit=Unit.BYTES, limit=60 * MB),
        "b": NodeLimit.objects.create(node=teams["b"], unit=Unit.BYTES, limit=100 * MB),
        "free": NodeLimit.objects.create(node=free, unit=Unit.BYTES, limit=40 * MB),
    }
    lines = []
    for n in range(WORKERS):
        team = list(teams.values())[n % 3]
        line = line_create(billing_account=account, msisdn=f"3199{n:07d}")
        device = cost_centre_create(parent=team, name=line.msisdn, kind=CostCentre.Kind.DEVICE, line=line)
        if n == 0:
            limits["device"] = NodeLimit.objects.create(node=device, unit=Unit.BYTES, limit=7 * MB)
        lines.append((line, team))
    pool = bucket_grant(cost_centre=root, name="Pool", unit=Unit.BYTES, quantity=180 * MB)
    return pool, limits, lines


def drain(msisdn: str, worker: int, errors: list) -> None:
    """Sessions one after another, each asking for a few MB and reporting in pieces, until the
    tree refuses three grants in a row."""
    rng = random.Random(worker)
    refused = 0
    number = 0
    try:
        while refused < 3:
            number += 1
            session_id = f"w{worker}-{number}"
            granted = session_start(
                session_id=session_id, msisdn=msisdn, service="data", requested_units=rng.randint(1, 6) * MB
            )["granted_units"]
            if granted == 0:
                refused += 1
                session_terminate(session_id=session_id, request_number=1, used_units=0)
                continue
            refused = 0
            first = rng.randint(0, granted)
            granted_again = session_update(
                session_id=session_id, request_number=1, used_units=first, requested_units=granted
            )["granted_units"]
            session_terminate(session_id=session_id, request_number=2, used_units=granted_again)
    except Exception as exc:  # noqa: BLE001 - a deadlock or any other failure is what we look for
        errors.append(exc)
    finally:
        connection.close()


def test_sixteen_workers_never_overspend_any_limit_on_the_path_and_reconcile(engine):
    require_postgres()
    pool, limits, lines = branchy_company()
    errors: list = []
    threads = [threading.Thread(target=drain, args=(line.msisdn, n, errors)) for n, (line, _) in enumerate(lines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    engine()

    assert errors == []
    used_by_team: dict[int, int] = {}
    for line, team in lines:
        used = sum(ChargingSession.objects.filter(line=line).values_list("used_units", flat=True))
        used_by_team[team.pk] = used_by_team.get(team.pk, 0) + used
    for limit in NodeLimit.objects.all():
        assert limit.reserved == 0
        assert limit.used <= limit.limit
    counted = {key: NodeLimit.objects.get(pk=limit.pk).used for key, limit in limits.items()}
    a, b, f = (used_by_team[team.pk] for team in (limits["a"].node, limits["b"].node, lines[2][1]))
    assert (counted["a"], counted["b"], counted["limited"], counted["free"]) == (a, b, a + b, f)
    first_line_used = sum(ChargingSession.objects.filter(line=lines[0][0]).values_list("used_units", flat=True))
    assert counted["device"] == first_line_used <= 7 * MB
    pool = Bucket.objects.get(pk=pool.pk)
    assert (pool.remaining, pool.reserved) == (0, 0)  # drained to the last byte, not past it
    assert a + b + f == 180 * MB
    assert ledger_mismatches() == []


def test_the_same_update_delivered_eight_times_at_once_gets_one_answer_and_settles_once(engine):
    require_postgres()
    pool, limits, lines = branchy_company()
    msisdn = lines[1][0].msisdn  # a line without a device limit
    granted = session_start(session_id="twin", msisdn=msisdn, service="data", requested_units=4 * MB)
    assert granted["granted_units"] == 4 * MB
    answers = run_together(
        8 * [lambda: session_update(session_id="twin", request_number=1, used_units=3 * MB, requested_units=MB)]
    )
    session_terminate(session_id="twin", request_number=2, used_units=0)
    engine()

    assert len(answers) == 8
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["used_units"] == 3 * MB
    assert ChargingSession.objects.get(session_id="twin").used_units == 3 * MB
    assert ledger_mismatches() == []


def test_the_same_start_delivered_eight_times_at_once_opens_one_session(engine):
    require_postgres()
    pool, limits, lines = branchy_company()
    msisdn = lines[1][0].msisdn
    answers = run_together(
        8 * [lambda: session_start(session_id="twin", msisdn=msisdn, service="data", requested_units=4 * MB)]
    )
    session_terminate(session_id="twin", request_number=1, used_units=4 * MB)
    engine()

    assert len(answers) == 8
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["granted_units"] == 4 * MB
    assert ChargingSession.objects.get(session_id="twin").used_units == 4 * MB
    assert Bucket.objects.get(pk=pool.pk).remaining == 176 * MB
    assert ledger_mismatches() == []


@pytest.mark.usefixtures("quota_store")
def test_the_same_update_that_hands_a_session_to_money_delivered_eight_times_gets_one_answer():
    require_postgres()
    line = LineFactory()
    default_data_tariff()
    money_post(billing_account=line.billing_account, amount=Decimal("1.00"), kind="topup", reason="Top-up")
    data_bucket(line, 10 * MB)
    session_start(session_id="twin", msisdn=line.msisdn, service="data", requested_units=8 * MB)

    answers = run_together(
        8 * [lambda: session_update(session_id="twin", request_number=1, used_units=8 * MB, requested_units=8 * MB)]
    )
    session_terminate(session_id="twin", request_number=2, used_units=0)
    settle_store()

    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0]["granted_units"] == 8 * MB
    assert ChargingSession.objects.get(session_id="twin").used_units == 8 * MB
    assert ledger_mismatches() == []
