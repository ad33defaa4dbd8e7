from decimal import Decimal

import pytest

from charging.models import Bucket, ChargingRequest, ChargingSession, LedgerEntry, MoneyBalance, Reservation, Tariff
from charging.services import money_post
from charging.units import Service
from tests.factories import GB, MB, LineFactory, data_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def line():
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 100 * MB)
    return line


def start_body(line, **change):
    return {"session_id": "s-1", "msisdn": line.msisdn, "service": "data", "requested_units": 30 * MB, **change}


def without_time(body: dict, key: str = "answered_at") -> dict:
    assert body.pop(key)  # always answered with a time; the value is the clock's
    return body


def error(code: str, reason: str, status: int = 400, **extensions) -> dict:
    return {"@type": "Error", "code": code, "reason": reason, "message": reason, "status": str(status), **extensions}


def invalid_field(field: str, reason: str) -> dict:
    body = error("invalid", reason, field=field, errors={field: [reason]})
    return {**body, "message": f"{field}: {reason}"}


def bucket_counters(line) -> tuple[int, int]:
    bucket = Bucket.objects.get(line=line)
    return bucket.remaining, bucket.reserved


def test_a_session_started_updated_and_terminated_over_http_settles_what_was_used(usage_poster, line):
    started = usage_poster.post("/api/chargingSession/", start_body(line), format="json")
    after_start = bucket_counters(line)
    updated = usage_poster.post(
        "/api/chargingSession/s-1/update/",
        {"request_number": 1, "used_units": 20 * MB, "requested_units": 30 * MB},
        format="json",
    )
    after_update = bucket_counters(line)
    ended = usage_poster.post(
        "/api/chargingSession/s-1/terminate/", {"request_number": 2, "used_units": 5 * MB}, format="json"
    )

    assert started.status_code == 201
    assert without_time(started.json()) == {
        "result": "success",
        "session_id": "s-1",
        "request_number": 0,
        "status": "open",
        "granted_units": 30 * MB,
        "validity_seconds": 300,
        "final_unit_action": None,
        "throttled": False,
        "used_units": 0,
        "units_from_allowances": 0,
        "amount": "0.0000",
    }
    assert after_start == (100 * MB, 30 * MB)
    assert updated.status_code == 200
    assert (updated.json()["used_units"], updated.json()["granted_units"]) == (20 * MB, 30 * MB)
    assert after_update == (80 * MB, 30 * MB)
    assert ended.status_code == 200
    assert without_time(ended.json()) == {
        "result": "success",
        "session_id": "s-1",
        "request_number": 2,
        "status": "terminated",
        "granted_units": 0,
        "validity_seconds": 0,
        "final_unit_action": None,
        "throttled": False,
        "used_units": 5 * MB,
        "units_from_allowances": 5 * MB,
        "amount": "0.0000",
    }
    assert bucket_counters(line) == (75 * MB, 0)
    session = ChargingSession.objects.get(session_id="s-1")
    assert (session.status, session.request_number, session.used_units) == ("terminated", 2, 25 * MB)


def test_a_repeated_start_gets_exactly_the_first_answer_and_changes_nothing(usage_poster, line):
    first = usage_poster.post("/api/chargingSession/", start_body(line), format="json")
    repeat = usage_poster.post("/api/chargingSession/", start_body(line, requested_units=60 * MB), format="json")

    assert (first.status_code, repeat.status_code) == (201, 201)
    assert repeat.json() == first.json()
    assert repeat.json()["granted_units"] == 30 * MB
    assert bucket_counters(line) == (100 * MB, 30 * MB)
    assert ChargingSession.objects.count() == 1
    assert Reservation.objects.count() == 1
    assert ChargingRequest.objects.count() == 1


def test_an_update_out_of_order_is_refused_with_409_and_changes_nothing(usage_poster, line):
    usage_poster.post("/api/chargingSession/", start_body(line), format="json")
    ledger_before = LedgerEntry.objects.count()

    response = usage_poster.post(
        "/api/chargingSession/s-1/update/",
        {"request_number": 2, "used_units": 10 * MB, "requested_units": 10 * MB},
        format="json",
    )

    assert response.status_code == 409
    assert response.json() == error("out_of_order", "Expected request number 1, got 2.", 409, field="request_number")
    assert bucket_counters(line) == (100 * MB, 30 * MB)
    session = ChargingSession.objects.get(session_id="s-1")
    assert (session.request_number, session.used_units) == (0, 0)
    assert LedgerEntry.objects.count() == ledger_before
    assert ChargingRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "answer"),
    [
        (
            {"requested_units": -1},
            invalid_field("requested_units", "Ensure this value is greater than or equal to 0."),
        ),
        ({"requested_units": "lots"}, invalid_field("requested_units", "A valid integer is required.")),
        ({"requested_units": "１２"}, invalid_field("requested_units", "A valid integer is required.")),
        (
            {"requested_units": 2**64},
            invalid_field("requested_units", "Ensure this value is less than or equal to 9223372036854775807."),
        ),
        ({"msisdn": None}, invalid_field("msisdn", "This field is required.")),
        ({"session_id": ["s-1"]}, invalid_field("session_id", "Not a valid string.")),
        ({"service": "telepathy"}, invalid_field("service", '"telepathy" is not a valid choice.')),
        (
            {"requested_units": 100 * GB + 1},
            error("invalid", "At most 107,374,182,400 bytes per request of data.", field="requested_units"),
        ),
        ({"msisdn": "31699999999"}, error("unknown_line", "Unknown line 31699999999.", field="msisdn")),
    ],
)
def test_a_malformed_start_answers_400_naming_the_field_and_changes_nothing(usage_poster, line, change, answer):
    body = {key: value for key, value in start_body(line, **change).items() if value is not None}
    ledger_before = LedgerEntry.objects.count()

    response = usage_poster.post("/api/chargingSession/", body, format="json")

    assert response.status_code == 400
    assert response.json() == answer
    assert bucket_counters(line) == (100 * MB, 0)
    assert not ChargingSession.objects.exists()
    assert not ChargingRequest.objects.exists()
    assert LedgerEntry.objects.count() == ledger_before


def test_an_update_of_an_unknown_session_answers_404(usage_poster, line):
    response = usage_poster.post(
        "/api/chargingSession/nope/update/", {"request_number": 1, "used_units": 0}, format="json"
    )

    assert response.status_code == 404
    assert response.json() == error("unknown_session", "No session nope.", 404, field="session_id")
    assert not ChargingRequest.objects.exists()


def test_an_sms_is_charged_once_on_a_repeat_and_a_refund_gives_the_money_back(usage_poster, line):
    Tariff.objects.create(name="SMS", service=Service.SMS, price=Decimal("0.09"), per_units=1, is_default=True)
    money_post(billing_account=line.billing_account, amount=Decimal("1"), kind="topup", reason="Top-up")
    balance = MoneyBalance.objects.get(billing_account=line.billing_account)
    body = {"event_id": "sms-1", "msisdn": line.msisdn, "service": "sms"}

    first = usage_poster.post("/api/chargingEvent/", body, format="json")
    repeat = usage_poster.post("/api/chargingEvent/", body, format="json")
    balance.refresh_from_db()
    after_charge = balance.amount
    refund = usage_poster.post("/api/chargingEvent/sms-1/refund/", {"reason": "Not delivered"}, format="json")
    refund_again = usage_poster.post("/api/chargingEvent/sms-1/refund/", {}, format="json")

    assert (first.status_code, repeat.status_code) == (201, 201)
    assert repeat.json() == first.json()
    assert without_time(first.json(), "charged_at") == {
        "result": "success",
        "event_id": "sms-1",
        "line": line.pk,
        "service": "sms",
        "units": 1,
        "units_from_allowances": 0,
        "amount": "0.0900",
        "limits": [],
    }
    assert after_charge == Decimal("0.9100")
    assert (refund.status_code, refund_again.status_code) == (200, 200)
    assert refund.json() == {"result": "success", "event_id": "sms-1", "units_returned": 0, "amount_returned": "0.0900"}
    assert refund_again.json() == refund.json()
    balance.refresh_from_db()
    assert balance.amount == Decimal("1.0000")
    assert LedgerEntry.objects.get(kind=LedgerEntry.Kind.REFUND).reason == "Not delivered"


def test_a_refund_of_an_unknown_event_answers_404(usage_poster, line):
    response = usage_poster.post("/api/chargingEvent/nope/refund/", {}, format="json")

    assert response.status_code == 404
    assert response.json() == error("unknown_event", "No charged event nope.", 404, field="event_id")


def test_a_content_purchase_beyond_the_balance_answers_402_and_changes_nothing(usage_poster, line):
    money_post(billing_account=line.billing_account, amount=Decimal("5"), kind="topup", reason="Top-up")
    ledger_before = LedgerEntry.objects.count()

    response = usage_poster.post(
        "/api/chargingEvent/",
        {"event_id": "film", "msisdn": line.msisdn, "service": "content", "price": "5.0001"},
        format="json",
    )

    assert response.status_code == 402
    assert response.json() == error("insufficient_balance", "Only 0 of 1 units can be charged.", 402)
    balance = MoneyBalance.objects.get(billing_account=line.billing_account)
    assert (balance.amount, balance.reserved) == (Decimal("5.0000"), Decimal("0.0000"))
    assert LedgerEntry.objects.count() == ledger_before
    assert not ChargingRequest.objects.exists()


def test_a_negative_price_answers_400_naming_the_price(usage_poster, line):
    response = usage_poster.post(
        "/api/chargingEvent/",
        {"event_id": "film", "msisdn": line.msisdn, "service": "content", "price": "-1"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == invalid_field("price", "Ensure this value is greater than or equal to 0.")


def test_an_update_asking_past_the_services_bound_is_refused_naming_the_field(usage_poster, line):
    usage_poster.post("/api/chargingSession/", start_body(line), format="json")

    response = usage_poster.post(
        "/api/chargingSession/s-1/update/",
        {"request_number": 1, "used_units": 0, "requested_units": 100 * GB + 1},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == error(
        "invalid", "At most 107,374,182,400 bytes per request of data.", field="requested_units"
    )
    assert bucket_counters(line) == (100 * MB, 30 * MB)
    assert ChargingSession.objects.get().request_number == 0


def test_an_event_past_the_services_bound_is_refused_and_changes_nothing(usage_poster, line):
    response = usage_poster.post(
        "/api/chargingEvent/",
        {"event_id": "bulk", "msisdn": line.msisdn, "service": "sms", "units": 1001},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == error("invalid", "At most 1,000 messages per request of sms.", field="units")
    assert not ChargingRequest.objects.exists()
