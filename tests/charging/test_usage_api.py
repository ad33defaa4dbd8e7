import pytest

from charging.models import Bucket, LedgerEntry, UsageEvent
from tests.factories import MB, LineFactory, UserFactory, data_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def line():
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 50 * MB)
    return line


def test_posted_usage_is_charged_and_a_repeat_returns_the_first_answer(
    usage_poster, line, django_capture_on_commit_callbacks
):
    body = {"external_id": "cdr-1", "msisdn": line.msisdn, "service": "data", "quantity": 5 * MB}

    with django_capture_on_commit_callbacks(execute=True):
        first = usage_poster.post("/api/usage/", body, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        repeat = usage_poster.post("/api/usage/", {**body, "quantity": 40 * MB}, format="json")

    assert first.status_code == 201
    assert UsageEvent.objects.get(pk=first.json()["id"]).status == UsageEvent.Status.CHARGED
    assert repeat.status_code == 200
    assert repeat.json()["id"] == first.json()["id"]
    assert repeat.json()["quantity"] == 5 * MB
    assert Bucket.objects.get(line=line).remaining == 45 * MB


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"msisdn": "31699999999"}, "msisdn", "Unknown line 31699999999."),
        ({"quantity": -5}, "quantity", "Must be positive."),
        ({"unit": "furlongs"}, "unit", "Unknown unit 'furlongs' for data; expected 'bytes'."),
        (
            {"service": "telepathy"},
            "service",
            "Unknown service 'telepathy'; expected one of data, voice, sms, video, content.",
        ),
        ({"occurred_at": "yesterday"}, "occurred_at", "Must be an ISO 8601 date and time."),
    ],
)
def test_malformed_usage_is_rejected_with_the_reason_kept_and_nothing_charged(
    usage_poster, line, change, field, reason, django_capture_on_commit_callbacks
):
    body = {"external_id": "bad-1", "msisdn": line.msisdn, "service": "data", "quantity": MB, **change}
    ledger_before = LedgerEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = usage_poster.post("/api/usage/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {field: reason}
    stored = UsageEvent.objects.get(external_id="bad-1")
    assert stored.status == UsageEvent.Status.REJECTED
    assert stored.payload == body
    assert f"{field}: {reason}" in stored.reason
    assert Bucket.objects.get(line=line).remaining == 50 * MB
    assert LedgerEntry.objects.count() == ledger_before


def test_record_without_an_id_is_kept_as_rejected(usage_poster, line):
    response = usage_poster.post(
        "/api/usage/", {"msisdn": line.msisdn, "service": "data", "quantity": 1}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"external_id": "Required: the network's unique id of this record."}
    assert UsageEvent.objects.filter(status=UsageEvent.Status.REJECTED).count() == 1


def test_a_consumer_may_not_post_usage(client, line):
    client.force_login(UserFactory())

    response = client.post(
        "/api/usage/",
        {"external_id": "x", "msisdn": line.msisdn, "service": "data", "quantity": 1},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert not UsageEvent.objects.exists()
