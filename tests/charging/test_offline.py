import csv
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from charging.ledger import ledger_mismatches
from charging.models import Bucket, LedgerEntry, UsageChargeSweep, UsageEvent, UsageQueueBacklog
from charging.offline import requeue_after, usage_batch_ingest, usage_events_requeue
from charging.tasks import charge_usage_batch, queue_usage_backlog
from charging.usage_events import usage_event_replay
from portal.models import LineHold
from portal.services import line_hold_lift, line_hold_place
from tests.concurrency import run_together
from tests.factories import MB, LineFactory, UserFactory, data_bucket
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture
def line():
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 50 * MB)
    return line


def good(external_id, quantity, msisdn="31611111111"):
    return {"external_id": external_id, "msisdn": msisdn, "service": "data", "quantity": quantity}


def batch():
    return [
        good("cdr-1", 1 * MB),
        good("cdr-2", 2 * MB),
        {**good("cdr-3", 1 * MB), "service": "telepathy"},
        good("cdr-4", 4 * MB),
        {**good("cdr-5", -5), "msisdn": "31699999999"},
    ]


def usage_ledger_count():
    return LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count()


def test_bulk_post_charges_good_records_once_and_keeps_bad_ones_with_reasons(
    usage_poster, line, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = usage_poster.post("/api/usage/bulk/", {"records": batch()}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (3, 0, 2)
    charged = UsageEvent.objects.filter(external_id__in=["cdr-1", "cdr-2", "cdr-4"])
    assert sorted(body["accepted_ids"]) == sorted(charged.values_list("pk", flat=True))
    assert [(r["index"], r["external_id"], r["errors"]) for r in body["rejections"]] == [
        (2, "cdr-3", {"service": "Unknown service 'telepathy'; expected one of data, voice, sms, video, content."}),
        (4, "cdr-5", {"quantity": "Must be positive.", "msisdn": "Unknown line 31699999999."}),
    ]
    assert body["duplicates"] == []
    assert set(charged.values_list("status", flat=True)) == {UsageEvent.Status.CHARGED}
    # The batch posts one entry for what its records drew from the allowance; each record names it.
    (reference,) = set(charged.values_list("ledger_reference", flat=True))
    bucket = Bucket.objects.get(line=line)
    assert list(LedgerEntry.objects.filter(reference=reference).values_list("bucket", "units")) == [
        (bucket.pk, -7 * MB)
    ]
    assert sorted(charged.values_list("units_from_buckets", flat=True)) == [1 * MB, 2 * MB, 4 * MB]
    rejected = UsageEvent.objects.filter(status=UsageEvent.Status.REJECTED).order_by("external_id")
    assert [(e.external_id, e.errors) for e in rejected] == [
        ("cdr-3", {"service": "Unknown service 'telepathy'; expected one of data, voice, sms, video, content."}),
        ("cdr-5", {"quantity": "Must be positive.", "msisdn": "Unknown line 31699999999."}),
    ]
    assert Bucket.objects.get(line=line).remaining == 43 * MB
    assert ledger_mismatches() == []


def test_posting_the_same_batch_again_charges_nothing_more(usage_poster, line, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = usage_poster.post("/api/usage/bulk/", {"records": batch()}, format="json")
    ledger_before, events_before = usage_ledger_count(), UsageEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = usage_poster.post("/api/usage/bulk/", {"records": batch()}, format="json")

    body = again.json()
    assert again.status_code == 202
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (0, 5, 0)
    assert [d["id"] for d in body["duplicates"]] == [
        UsageEvent.objects.get(external_id=f"cdr-{n}").pk for n in range(1, 6)
    ]
    assert [d["status"] for d in body["duplicates"]] == ["charged", "charged", "rejected", "charged", "rejected"]
    assert sorted(first.json()["accepted_ids"]) == sorted(
        d["id"] for d in body["duplicates"] if d["status"] == "charged"
    )
    assert callbacks == []  # nothing queued
    assert Bucket.objects.get(line=line).remaining == 43 * MB
    assert (usage_ledger_count(), UsageEvent.objects.count()) == (ledger_before, events_before)
    assert ledger_mismatches() == []


def test_a_record_repeated_within_a_batch_is_charged_once(line, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = usage_batch_ingest(payloads=[good("twin", 1 * MB), good("twin", 9 * MB)], source="mediation")

    assert [(o.status, o.event_id) for o in result.outcomes] == [
        ("accepted", result.outcomes[0].event_id),
        ("duplicate", result.outcomes[0].event_id),
    ]
    assert Bucket.objects.get(line=line).remaining == 49 * MB
    assert ledger_mismatches() == []


def test_a_batch_mixing_stored_and_new_records_stores_and_charges_only_the_new(
    line, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = usage_batch_ingest(payloads=[good("a", 1 * MB), good("b", 2 * MB)], source="mediation")
    stored_a = first.outcomes[0].event_id

    with django_capture_on_commit_callbacks(execute=True):
        result = usage_batch_ingest(
            payloads=[good("c", 4 * MB), good("a", 9 * MB), good("c", 9 * MB), good("a", 9 * MB), good("d", 8 * MB)],
            source="mediation",
        )

    stored_c = result.outcomes[0].event_id
    assert [(o.external_id, o.status, o.event_id) for o in result.outcomes] == [
        ("c", "accepted", stored_c),
        ("a", "duplicate", stored_a),
        ("c", "duplicate", stored_c),
        ("a", "duplicate", stored_a),
        ("d", "accepted", result.outcomes[4].event_id),
    ]
    assert [o.index for o in result.outcomes] == [0, 1, 2, 3, 4]
    assert UsageEvent.objects.count() == 4
    assert Bucket.objects.get(line=line).remaining == (50 - 1 - 2 - 4 - 8) * MB
    assert ledger_mismatches() == []


def test_accepted_records_are_queued_after_commit_in_chunks_of_the_batch_size(
    line, settings, django_capture_on_commit_callbacks
):
    settings.CHARGING_BATCH_SIZE = 2

    with django_capture_on_commit_callbacks() as callbacks:
        result = usage_batch_ingest(payloads=[good(f"c-{n}", MB) for n in range(5)], source="mediation")

    assert result.accepted == 5
    assert len(callbacks) == 3  # 2 + 2 + 1, and nothing charged before commit
    assert Bucket.objects.get(line=line).remaining == 50 * MB
    for callback in callbacks:
        callback()
    assert Bucket.objects.get(line=line).remaining == 45 * MB
    assert ledger_mismatches() == []


def test_more_than_ten_thousand_records_are_refused_and_nothing_is_stored(usage_poster, line):
    records = [good(f"cdr-{n}", 1) for n in range(10_001)]

    response = usage_poster.post("/api/usage/bulk/", {"records": records}, format="json")

    assert response.status_code == 400
    assert (response.json()["field"], response.json()["errors"]) == (
        "records",
        {"records": ["Ensure this field has no more than 10000 elements."]},
    )
    assert not UsageEvent.objects.exists()
    assert Bucket.objects.get(line=line).remaining == 50 * MB


def test_a_consumer_may_not_post_a_batch(client, line):
    client.force_login(UserFactory())

    response = client.post("/api/usage/bulk/", {"records": [good("x", 1)]}, content_type="application/json")

    assert response.status_code == 401
    assert not UsageEvent.objects.exists()


def test_csv_import_charges_exactly(tmp_path, line, django_capture_on_commit_callbacks):
    path = tmp_path / "usage.csv"
    just_now = timezone.now().isoformat()  # after the allowance was granted
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "msisdn", "service", "quantity", "occurred_at", "zone", "unit"])
        writer.writerow(["f-1", line.msisdn, "data", str(3 * MB), "", "", ""])
        writer.writerow(["f-2", line.msisdn, "data", str(5 * MB), just_now, "home", "bytes"])
        writer.writerow(["f-3", line.msisdn, "data", "lots", "", "", ""])
    out, err = StringIO(), StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("usage_import", str(path), "--chunk-size", "2", stdout=out, stderr=err)

    assert out.getvalue().splitlines() == [
        "2/3 records",
        "3/3 records",
        "3 records: 2 accepted, 0 duplicate, 1 rejected",
    ]
    assert err.getvalue().splitlines() == [
        "line 4 (f-3): quantity: Must be a whole number of units, in the digits 0-9."
    ]
    assert Bucket.objects.get(line=line).remaining == 42 * MB
    assert UsageEvent.objects.get(external_id="f-1").payload["quantity"] == str(3 * MB)
    assert usage_ledger_count() == 1  # the first chunk's two records, posted as one entry
    assert ledger_mismatches() == []


def test_jsonl_import_charges_exactly_and_a_second_run_changes_nothing(
    tmp_path, line, django_capture_on_commit_callbacks
):
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(json.dumps(good(f"j-{n}", (n + 1) * MB)) for n in range(4)) + "\n")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("usage_import", str(path), stdout=StringIO())
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("usage_import", str(path), "--format", "jsonl", stdout=out)

    assert out.getvalue().splitlines()[-1] == "4 records: 0 accepted, 4 duplicate, 0 rejected"
    assert Bucket.objects.get(line=line).remaining == 40 * MB
    assert usage_ledger_count() == 1  # the four records' one posting, and nothing from the second run
    assert ledger_mismatches() == []


def test_jsonl_import_keeps_malformed_records_as_rejected_with_their_reasons(
    tmp_path, line, django_capture_on_commit_callbacks
):
    records = [
        {**good("m-1", MB), "service": ["data"]},
        {**good("m-2", MB), "service": {"name": "data"}},
        {**good("m-3", MB), "occurred_at": "2024-02-30T10:00:00+01:00"},
        good("m-4", 2**70),
        good("m-5", "１２"),
        {**good("m-6", MB), "zone": [["home"]], "unit": {"a": 1}},
        good("m-7", MB),
    ]
    lines = [json.dumps(r) for r in records]
    lines.insert(2, json.dumps(good("m-nul", 1, msisdn="316\x00")))  # the escape \u0000 in JSON
    lines.insert(2, "[" * 100_000 + "]" * 100_000)
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out, err = StringIO(), StringIO()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError, match="2 lines could not"):
        call_command("usage_import", str(path), stdout=out, stderr=err)

    assert out.getvalue().splitlines()[-1] == "7 records: 1 accepted, 0 duplicate, 6 rejected"
    unknown_service = "Unknown service {}; expected one of data, voice, sms, video, content."
    assert dict(UsageEvent.objects.filter(status="rejected").values_list("external_id", "errors")) == {
        "m-1": {"service": unknown_service.format("of type list")},
        "m-2": {"service": unknown_service.format("of type dict")},
        "m-3": {"occurred_at": "Must be an ISO 8601 date and time."},
        "m-4": {"quantity": "At most 107,374,182,400 bytes per record of data."},
        "m-5": {"quantity": "Must be a whole number of units, in the digits 0-9."},
        "m-6": {
            "zone": "Unknown zone of type list; expected one of home, roam_eu, roam_world.",
            "unit": "Unknown unit of type dict for data; expected 'bytes'.",
        },
    }
    assert err.getvalue().splitlines()[:2] == [
        "line 3: not JSON (nested too deeply)",
        "line 4: holds a NUL character (\\u0000), which cannot be stored",
    ]
    assert Bucket.objects.get(line=line).remaining == 49 * MB
    assert ledger_mismatches() == []


def test_csv_import_keeps_malformed_records_as_rejected(tmp_path, line, django_capture_on_commit_callbacks):
    path = tmp_path / "usage.csv"
    path.write_text(
        "external_id,msisdn,service,quantity,occurred_at\n"
        f"c-1,{line.msisdn},data,１２,\n"
        f"c-2,{line.msisdn},data,{2**64},\n"
        f"c-3,{line.msisdn},data,1,2024-02-30T10:00:00+01:00\n"
        f"c-4,{line.msisdn},data,1\x00,\n"
        f"c-5,{line.msisdn},sms,1001,\n",
        encoding="utf-8",
    )
    out, err = StringIO(), StringIO()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError, match="1 lines could not"):
        call_command("usage_import", str(path), stdout=out, stderr=err)

    assert out.getvalue().splitlines()[-1] == "4 records: 0 accepted, 0 duplicate, 4 rejected"
    assert dict(UsageEvent.objects.values_list("external_id", "errors")) == {
        "c-1": {"quantity": "Must be a whole number of units, in the digits 0-9."},
        "c-2": {"quantity": "At most 107,374,182,400 bytes per record of data."},
        "c-3": {"occurred_at": "Must be an ISO 8601 date and time."},
        "c-5": {"quantity": "At most 1,000 messages per record of sms."},
    }
    assert err.getvalue().splitlines()[0] == "line 5: holds a NUL character (\\u0000), which cannot be stored"
    assert Bucket.objects.get(line=line).remaining == 50 * MB


def test_import_of_an_unreadable_file_fails(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("usage_import", str(tmp_path / "missing.csv"), stdout=StringIO())
    bad = tmp_path / "bad.csv"
    bad.write_text("id,when\n1,now\n")
    with pytest.raises(CommandError, match="lacks external_id, msisdn, quantity, service"):
        call_command("usage_import", str(bad), stdout=StringIO())
    assert not UsageEvent.objects.exists()


def test_a_rejected_record_from_a_batch_replays_after_the_line_is_reactivated(django_capture_on_commit_callbacks):
    line = LineFactory(msisdn="31600000002")
    line_hold_place(line=line, cause=LineHold.Cause.AGENT_BAR, reason="Fraud check", actor=None)
    bucket = data_bucket(line, 5 * MB)
    with django_capture_on_commit_callbacks(execute=True):
        result = usage_batch_ingest(payloads=[good("late-1", 2 * MB, msisdn=line.msisdn)], source="mediation")
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.errors) == ("rejected", {"msisdn": "Line 31600000002 is held: agent bar."})
    bucket.refresh_from_db()
    assert bucket.remaining == 5 * MB

    line_hold_lift(line=line, cause=LineHold.Cause.AGENT_BAR, reason="Checked", actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        usage_event_replay(event=UsageEvent.objects.get(pk=outcome.event_id), actor=UserFactory(is_staff=True))

    bucket.refresh_from_db()
    assert UsageEvent.objects.get(pk=outcome.event_id).status == UsageEvent.Status.CHARGED
    assert bucket.remaining == 3 * MB
    assert ledger_mismatches() == []


def test_a_twin_stored_concurrently_falls_back_to_row_by_row_and_keeps_the_first_answer(
    line, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        usage_batch_ingest(payloads=[good("race-1", 1 * MB)], source="mediation")
    first = UsageEvent.objects.get(external_id="race-1")
    # As if another delivery stored race-1 between the look-up and the insert.
    monkeypatch.setattr("charging.offline._stored_events", lambda **kwargs: {})

    with django_capture_on_commit_callbacks(execute=True):
        result = usage_batch_ingest(payloads=[good("race-2", 2 * MB), good("race-1", 9 * MB)], source="mediation")

    assert [(o.external_id, o.status) for o in result.outcomes] == [("race-2", "accepted"), ("race-1", "duplicate")]
    assert result.outcomes[1].event_id == first.pk
    assert Bucket.objects.get(line=line).remaining == 47 * MB
    assert usage_ledger_count() == 2
    assert ledger_mismatches() == []


def test_records_whose_charging_task_was_lost_are_queued_again_and_charged_once(
    line, django_capture_on_commit_callbacks
):
    payloads = [good(f"lost-{n}", MB) for n in range(3)] + [{**good("bad", MB), "service": "telepathy"}]
    with django_capture_on_commit_callbacks() as lost:  # queued, and never run
        result = usage_batch_ingest(payloads=payloads, source="mediation")
    assert len(lost) == 1
    stored = [outcome.event_id for outcome in result.outcomes]

    with django_capture_on_commit_callbacks(execute=True):
        assert usage_events_requeue() == 0  # just stored: their task may well be on its way
    assert UsageChargeSweep.objects.get().below_id <= stored[0]  # the mark never passes a recent record

    later = timezone.now() + requeue_after()
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_events_requeue(now=later, chunk=2) == 3  # two records a transaction
    assert UsageChargeSweep.objects.get().below_id == stored[0]  # they were waiting: the mark stays below
    with django_capture_on_commit_callbacks(execute=True):
        assert usage_events_requeue(now=later) == 0  # charged: the mark has passed them
    for callback in lost:  # the lost task turns up after all: it charges nothing twice
        callback()

    statuses = dict(UsageEvent.objects.filter(pk__in=stored).values_list("external_id", "status"))
    assert statuses == {"lost-0": "charged", "lost-1": "charged", "lost-2": "charged", "bad": "rejected"}
    assert UsageChargeSweep.objects.get().below_id == max(stored) + 1
    assert Bucket.objects.get(line=line).remaining == 47 * MB
    assert ledger_mismatches() == []


def test_a_line_with_usage_cannot_be_deleted():
    """The database does not check usage records' lines (storing a batch would lock every
    line's row): the portal refuses to delete a line that has usage."""
    line = LineFactory(msisdn="31622222222")
    result = usage_batch_ingest(payloads=[good("kept-1", MB, msisdn=line.msisdn)], source="mediation")
    event = UsageEvent.objects.get(pk=result.outcomes[0].event_id)

    with pytest.raises(ProtectedError) as refused:
        line.delete()
    assert set(refused.value.protected_objects) == {event}
    assert UsageEvent.objects.get(pk=event.pk).line == line


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trial", range(8))
def test_the_same_records_posted_twice_at_once_in_reverse_order_are_stored_once_without_error(trial):
    require_postgres()
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 500 * MB)
    records = [good(f"cdr-{n}", 1) for n in range(1000)]

    results = run_together(
        [
            lambda: usage_batch_ingest(payloads=records, source="mediation"),
            lambda: usage_batch_ingest(payloads=records[::-1], source="mediation"),
        ]
    )

    assert [type(result).__name__ for result in results] == ["BatchResult", "BatchResult"]
    assert results[0].accepted + results[1].accepted == 1000
    assert results[0].duplicate + results[1].duplicate == 1000
    assert UsageEvent.objects.count() == 1000


@pytest.fixture
def broker_away(monkeypatch):
    """Publishing a charging task fails as it does while Redis is down; calling what it yields
    brings the broker back."""
    refused = KombuOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def publish_refused(*args, **kwargs):
        raise refused

    monkeypatch.setattr(charge_usage_batch, "delay", publish_refused)
    return monkeypatch.undo


def test_a_bulk_post_while_the_broker_is_away_answers_what_it_stored_and_charges_once_it_is_back(
    usage_poster, line, django_capture_on_commit_callbacks, broker_away
):
    with django_capture_on_commit_callbacks(execute=True):
        response = usage_poster.post("/api/usage/bulk/", {"records": batch()}, format="json")

    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["rejected"]) == (3, 2)
    assert UsageQueueBacklog.objects.count() == 1
    assert not UsageEvent.objects.filter(status=UsageEvent.Status.CHARGED).exists()

    broker_away()  # it is back
    assert queue_usage_backlog() == 3

    assert UsageQueueBacklog.objects.count() == 0
    assert UsageEvent.objects.filter(status=UsageEvent.Status.CHARGED).count() == 3
    assert Bucket.objects.get(line=line).remaining == 43 * MB
    assert ledger_mismatches() == []


def test_an_operator_queues_lost_records_at_once_with_usage_requeue(line, settings, django_capture_on_commit_callbacks):
    settings.CHARGING_REQUEUE_AFTER_SECONDS = 3600  # beat's sweep would wait an hour
    with django_capture_on_commit_callbacks() as lost:  # queued, and never run
        result = usage_batch_ingest(payloads=[good(f"lost-{n}", MB) for n in range(2)], source="mediation")
    assert len(lost) == 1
    assert usage_events_requeue() == 0

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("usage_requeue", "--older-than", "0", stdout=out)

    assert out.getvalue().strip() == "usage-requeue backlog=0 swept=2"
    charged = UsageEvent.objects.filter(pk__in=[o.event_id for o in result.outcomes], status="charged")
    assert charged.count() == 2
    assert Bucket.objects.get(line=line).remaining == 48 * MB
