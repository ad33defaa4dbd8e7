"""A repeated request gets exactly the first answer, status and body, however it arrives:
one after the other, or eight deliveries at the same moment (real concurrent requests against
PostgreSQL), with sessions and events charged in the database or in the quota store."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from charging.credentials import network_credential_issue
from charging.ledger import ledger_mismatches
from charging.models import Bucket, ChargingRequest, ChargingSession, LedgerEntry, MoneyBalance, Tariff
from charging.services import bucket_grant, money_post
from charging.units import Service, Unit
from tests.charging.quota import quota_store, settle_store  # noqa: F401 - the fixture
from tests.concurrency import run_together
from tests.factories import MB, LineFactory, data_bucket
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
TWINS = 8


@pytest.fixture(params=["database", "quota store"])
def engine(request):
    """Where requests are charged; ``settle()`` brings the database up to date afterwards."""
    require_postgres()
    if request.param == "database":
        return lambda: None
    request.getfixturevalue("quota_store")
    return settle_store


@pytest.fixture
def key():
    return network_credential_issue(source="ggsn-1", scopes=["sessions", "events"]).key


def post(key: str, path: str, body: dict) -> tuple[int, dict]:
    """One request, as a network element sends it: a client (and a connection) of its own."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.post(path, body, format="json")
    return response.status_code, response.json()


def twins(key: str, path: str, body: dict) -> list[tuple[int, dict]]:
    answers = run_together([lambda: post(key, path, body) for _ in range(TWINS)])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    return answers


def test_twin_session_starts_all_get_the_first_answer_and_open_one_session(engine, key):
    line = LineFactory()
    data_bucket(line, 100 * MB)
    body = {"session_id": "twin", "msisdn": line.msisdn, "service": "data", "requested_units": 10 * MB}
    post(key, "/api/chargingSession/", {**body, "session_id": "warm-up"})  # the store now holds the line

    answers = twins(key, "/api/chargingSession/", body)
    later = post(key, "/api/chargingSession/", {**body, "requested_units": 50 * MB})

    assert {status for status, _ in answers} == {201}
    assert all(answer == answers[0] for answer in answers)
    assert later == answers[0]
    assert answers[0][1]["granted_units"] == 10 * MB
    ended = post(key, "/api/chargingSession/twin/terminate/", {"request_number": 1, "used_units": 4 * MB})
    assert ended[0] == 200
    post(key, "/api/chargingSession/warm-up/terminate/", {"request_number": 1, "used_units": 0})
    engine()
    assert ChargingSession.objects.get(session_id="twin").used_units == 4 * MB
    assert Bucket.objects.get(line=line).remaining == 96 * MB
    assert ledger_mismatches() == []


def test_twin_event_charges_all_get_the_first_answer_and_charge_once(engine, key):
    line = LineFactory()
    bucket_grant(line=line, name="SMS", unit=Unit.MESSAGES, quantity=10)
    body = {"event_id": "sms-1", "msisdn": line.msisdn, "service": "sms"}

    answers = twins(key, "/api/chargingEvent/", body)
    later = post(key, "/api/chargingEvent/", body)
    engine()

    assert {status for status, _ in answers} == {201}
    assert all(answer == answers[0] for answer in answers)
    assert later == answers[0]
    assert Bucket.objects.get(line=line).remaining == 9
    assert LedgerEntry.objects.filter(reference="event:ggsn-1:sms-1").count() == 1
    assert ChargingRequest.objects.get(key="event:ggsn-1:sms-1").status_code == 201
    assert ledger_mismatches() == []


def test_twin_event_charges_in_money_all_get_the_first_answer_and_charge_once(engine, key):
    line = LineFactory()
    Tariff.objects.create(name="SMS", service=Service.SMS, price=Decimal("0.09"), per_units=1, is_default=True)
    money_post(billing_account=line.billing_account, amount=Decimal("0.10"), kind="topup", reason="Top-up")
    body = {"event_id": "sms-2", "msisdn": line.msisdn, "service": "sms"}

    answers = twins(key, "/api/chargingEvent/", body)
    engine()

    # Enough money for one: the twins get the charge's answer, not the refusal the spent balance would give.
    assert {status for status, _ in answers} == {201}
    assert all(answer == answers[0] for answer in answers)
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("0.0100")
    assert ledger_mismatches() == []


def test_twin_refunds_all_get_the_first_answer_and_refund_once(engine, key):
    line = LineFactory()
    Tariff.objects.create(name="SMS", service=Service.SMS, price=Decimal("0.09"), per_units=1, is_default=True)
    money_post(billing_account=line.billing_account, amount=Decimal("1"), kind="topup", reason="Top-up")
    post(key, "/api/chargingEvent/", {"event_id": "sms-3", "msisdn": line.msisdn, "service": "sms"})
    refunds = network_credential_issue(source="ggsn-1", scopes=["refunds"]).key

    answers = twins(refunds, "/api/chargingEvent/sms-3/refund/", {})
    engine()

    assert {status for status, _ in answers} == {200}
    assert all(answer == answers[0] for answer in answers)
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("1.0000")
    assert ledger_mismatches() == []
