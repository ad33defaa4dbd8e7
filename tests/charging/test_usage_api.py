import pytest

from charging.models import Bucket, LedgerEntry, UsageEvent
from tests.factories import GB, MB, LineFactory, data_bucket

pytestmark = pytest.mark.django_db


@pytest.fixture
def line():
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 50 * MB)
    return line


def record(line, **change):
    return {"external_id": "bad-1", "msisdn": line.msisdn, "service": "data", "quantity": MB, **change}


def test_posted_usage_is_charged_and_a_repeat_gets_the_first_status_and_the_record(
    usage_poster, line, django_capture_on_commit_callbacks
):
    body = {"external_id": "cdr-1", "msisdn": line.msisdn, "service": "data", "quantity": 5 * MB}

    with django_capture_on_commit_callbacks(execute=True):
        first = usage_poster.post("/api/usage/", body, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        repeat = usage_poster.post("/api/usage/", {**body, "quantity": 40 * MB}, format="json")

    assert first.status_code == 201
    assert UsageEvent.objects.get(pk=first.json()["id"]).status == UsageEvent.Status.CHARGED
    assert repeat.status_code == 201
    # The record as it stands: charged after the first answer's commit.
    assert first.json()["status"] == "received"
    assert repeat.json() == {
        **first.json(),
        "status": "charged",
        "units_from_buckets": 5 * MB,
        "charged_at": repeat.json()["charged_at"],
    }
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
        (
            {"service": ["data"]},
            "service",
            "Unknown service of type list; expected one of data, voice, sms, video, content.",
        ),
        (
            {"service": {"name": "data"}},
            "service",
            "Unknown service of type dict; expected one of data, voice, sms, video, content.",
        ),
        ({"zone": ["home"]}, "zone", "Unknown zone of type list; expected one of home, roam_eu, roam_world."),
        ({"occurred_at": "yesterday"}, "occurred_at", "Must be an ISO 8601 date and time."),
        ({"occurred_at": "2024-02-30T10:00:00+01:00"}, "occurred_at", "Must be an ISO 8601 date and time."),
        ({"occurred_at": 1700000000}, "occurred_at", "Must be an ISO 8601 date and time."),
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at", "Lies more than 366 days in the past."),
        ({"occurred_at": "2020-01-01T00:00:00+00:00"}, "occurred_at", "Lies more than 366 days in the past."),
        ({"quantity": "１２"}, "quantity", "Must be a whole number of units, in the digits 0-9."),
        ({"quantity": " 12"}, "quantity", "Must be a whole number of units, in the digits 0-9."),
        ({"quantity": "1_000"}, "quantity", "Must be a whole number of units, in the digits 0-9."),
        ({"quantity": 2.5}, "quantity", "Required: a whole number of units."),
        ({"quantity": 2**64}, "quantity", "At most 107,374,182,400 bytes per record of data."),
        ({"quantity": "9" * 40}, "quantity", "At most 107,374,182,400 bytes per record of data."),
        ({"quantity": 100 * GB + 1}, "quantity", "At most 107,374,182,400 bytes per record of data."),
        ({"service": "sms", "quantity": 1001}, "quantity", "At most 1,000 messages per record of sms."),
    ],
)
def test_malformed_usage_is_rejected_with_the_reason_kept_and_nothing_charged(
    usage_poster, line, change, field, reason, django_capture_on_commit_callbacks
):
    body = record(line, **change)
    ledger_before = LedgerEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = usage_poster.post("/api/usage/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "@type": "Error",
        "code": "invalid",
        "reason": reason,
        "message": f"Kept as rejected record {UsageEvent.objects.get().pk}, for replay: {field}: {reason}",
        "status": "400",
        "field": field,
        "errors": {field: [reason]},
    }
    stored = UsageEvent.objects.get(external_id="bad-1")
    assert stored.status == UsageEvent.Status.REJECTED
    assert stored.payload == body
    assert stored.errors == {field: reason}
    assert Bucket.objects.get(line=line).remaining == 50 * MB
    assert LedgerEntry.objects.count() == ledger_before


def test_a_repeat_of_a_rejected_record_gets_the_same_refusal(usage_poster, line):
    first = usage_poster.post("/api/usage/", record(line, quantity=-5), format="json")
    repeat = usage_poster.post("/api/usage/", record(line), format="json")

    assert (first.status_code, repeat.status_code) == (400, 400)
    assert repeat.json() == first.json()
    assert UsageEvent.objects.count() == 1


def test_record_without_an_id_is_kept_as_rejected(usage_poster, line):
    response = usage_poster.post(
        "/api/usage/", {"msisdn": line.msisdn, "service": "data", "quantity": 1}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"external_id": ["Required: the network's unique id of this record."]}
    assert UsageEvent.objects.filter(status=UsageEvent.Status.REJECTED).count() == 1


def test_a_form_encoded_record_is_refused_as_unsupported_and_nothing_is_stored(usage_poster, line):
    response = usage_poster.post("/api/usage/", record(line))  # multipart, the test client's default

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    urlencoded = usage_poster.generic(
        "POST", "/api/usage/", "external_id=x&quantity=1", content_type="application/x-www-form-urlencoded"
    )
    assert urlencoded.status_code == 415
    assert not UsageEvent.objects.exists()


def test_a_body_that_is_not_an_object_is_refused_and_nothing_is_stored(usage_poster, line):
    response = usage_poster.post("/api/usage/", [record(line)], format="json")

    assert response.status_code == 400
    assert response.json() == {
        "@type": "Error",
        "code": "invalid",
        "reason": "A usage record is a JSON object.",
        "message": "A usage record is a JSON object.",
        "status": "400",
    }
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize("path", ["/api/usage/", "/api/usage/bulk/", "/api/chargingSession/", "/api/chargingEvent/"])
@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_json_is_refused_on_every_network_endpoint(usage_poster, line, path, depth):
    body = '{"records": ' + "[" * depth + "]" * depth + "}"

    response = usage_poster.generic("POST", path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert response.json()["reason"] == "JSON parse error - nested deeper than 32 levels"
    assert not UsageEvent.objects.exists()


def test_a_nul_character_in_a_record_is_refused_and_nothing_is_stored(usage_poster, line):
    response = usage_poster.post("/api/usage/", record(line, external_id="a\x00b"), format="json")

    assert response.status_code == 400
    assert response.json()["reason"] == "JSON parse error - strings may not contain NUL characters (\\u0000)"
    assert not UsageEvent.objects.exists()


def test_an_escaped_backslash_before_u0000_is_plain_text_and_accepted(usage_poster, line):
    response = usage_poster.post("/api/usage/", record(line, external_id="a\\u0000b"), format="json")

    assert response.status_code == 201
    assert UsageEvent.objects.get().external_id == "a\\u0000b"
