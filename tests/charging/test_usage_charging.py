from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charging.ledger import ledger_mismatches
from charging.models import Bucket, LedgerEntry, MoneyBalance, UsageEvent
from charging.usage_events import usage_event_charge, usage_event_ingest, usage_event_replay
from portal.models import LineHold
from portal.services import line_hold_lift, line_hold_place
from tests.factories import MB, LineFactory, UserFactory, data_bucket, default_data_tariff, funded_account

pytestmark = pytest.mark.django_db


def record(line, external_id="ev-1", quantity=10 * MB, **extra):
    return {"external_id": external_id, "msisdn": line.msisdn, "service": "data", "quantity": quantity, **extra}


def test_same_usage_event_twice_charges_once_and_ledger_sums_to_bucket(django_capture_on_commit_callbacks):
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)

    with django_capture_on_commit_callbacks(execute=True):
        first, created_first = usage_event_ingest(payload=record(line))
    with django_capture_on_commit_callbacks(execute=True):
        again, created_again = usage_event_ingest(payload=record(line, quantity=99 * MB))
    usage_event_charge(event_id=first.pk)  # a re-delivered task changes nothing either

    bucket.refresh_from_db()
    assert (created_first, created_again) == (True, False)
    assert again.pk == first.pk
    assert bucket.remaining == 90 * MB
    assert LedgerEntry.objects.filter(usage_event=first).count() == 1
    assert sum(bucket.ledger.values_list("units", flat=True)) == bucket.remaining
    assert ledger_mismatches() == []


def test_allowances_are_drawn_by_priority_then_soonest_expiry():
    line = LineFactory()
    later = data_bucket(line, 5 * MB, days=30, name="Monthly")
    sooner = data_bucket(line, 5 * MB, days=2, name="Weekend pass")
    first_priority = data_bucket(line, 1 * MB, days=60, priority=10, name="Promo")
    event, _ = usage_event_ingest(payload=record(line, quantity=8 * MB))

    usage_event_charge(event_id=event.pk)

    remaining = {b.name: b.remaining for b in Bucket.objects.filter(pk__in=[later.pk, sooner.pk, first_priority.pk])}
    assert remaining == {"Promo": 0, "Weekend pass": 0, "Monthly": 3 * MB}


def test_usage_beyond_allowances_is_rated_and_taken_from_money():
    line = LineFactory()
    default_data_tariff()
    funded_account(line)
    data_bucket(line, 1 * MB)
    event, _ = usage_event_ingest(payload=record(line, quantity=3 * MB + 1))

    event = usage_event_charge(event_id=event.pk)

    # 2 MB + 1 byte rounds up to 2 MB + 1 KB: 0.02 + 0.01/1024 = 0.02000977 -> 0.0201 up.
    assert event.units_from_buckets == 1 * MB
    assert event.amount_charged == Decimal("0.0201")
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("-0.0201")
    assert ledger_mismatches() == []


def test_expired_allowance_is_not_used():
    line = LineFactory()
    bucket = data_bucket(line, 5 * MB)
    Bucket.objects.filter(pk=bucket.pk).update(valid_until=timezone.now() - timedelta(minutes=1))
    event, _ = usage_event_ingest(payload=record(line, quantity=1 * MB))

    event = usage_event_charge(event_id=event.pk)

    bucket.refresh_from_db()
    assert bucket.remaining == 5 * MB
    assert event.units_from_buckets == 0


def test_charge_is_pushed_only_after_commit(django_capture_on_commit_callbacks):
    line = LineFactory()
    data_bucket(line, 100 * MB)  # 10% used: no threshold notice, just the balance push
    event, _ = usage_event_ingest(payload=record(line))

    with django_capture_on_commit_callbacks() as callbacks:
        usage_event_charge(event_id=event.pk)

    assert len(callbacks) == 1  # nothing left the process inside the transaction


def test_rejected_record_is_kept_and_replays_after_the_cause_is_fixed(django_capture_on_commit_callbacks):
    line = LineFactory(msisdn="31600000001")
    line_hold_place(line=line, cause=LineHold.Cause.AGENT_BAR, reason="Fraud check", actor=None)
    bucket = data_bucket(line, 5 * MB)
    event, _ = usage_event_ingest(payload=record(line, quantity=2 * MB))
    assert event.status == UsageEvent.Status.REJECTED
    assert event.errors == {"msisdn": "Line 31600000001 is held: agent bar."}
    assert bucket.remaining == 5 * MB

    line_hold_lift(line=line, cause=LineHold.Cause.AGENT_BAR, reason="Checked", actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        usage_event_replay(event=event, actor=UserFactory(is_staff=True), reason="Line reactivated")

    event.refresh_from_db()
    bucket.refresh_from_db()
    assert event.status == UsageEvent.Status.CHARGED
    assert bucket.remaining == 3 * MB


def test_a_line_on_a_rate_plan_is_rated_with_the_plans_tariff():
    from charging.models import RatePlan, Tariff
    from charging.services import line_rate_plan_assign

    default_data_tariff()  # 0.01 per MB
    plan = RatePlan.objects.create(code="business", name="Business")
    Tariff.objects.create(rate_plan=plan, name="Business data", service="data", price=Decimal("0.002"), per_units=MB)
    on_plan, on_default = LineFactory(), LineFactory()
    line_rate_plan_assign(line=on_plan, rate_plan=plan, reference="order-1")

    charged = []
    for index, line in enumerate([on_plan, on_default]):
        event, _ = usage_event_ingest(payload=record(line, external_id=f"plan-{index}", quantity=10 * MB))
        charged.append(usage_event_charge(event_id=event.pk).amount_charged)

    assert charged == [Decimal("0.0200"), Decimal("0.1000")]


def test_an_allowance_granted_from_its_definition_expires_after_its_validity():
    from charging.models import BucketDefinition
    from charging.services import bucket_grant_from_definition

    definition = BucketDefinition.objects.create(
        name="5 GB pass", unit="bytes", quantity=5 * 1024 * MB, validity_days=7
    )
    line = LineFactory()

    bucket = bucket_grant_from_definition(line=line, definition=definition, reference="order-9")

    assert (bucket.remaining, bucket.name, bucket.priority) == (5 * 1024 * MB, "5 GB pass", 100)
    assert timedelta(days=6, hours=23) < bucket.valid_until - timezone.now() <= timedelta(days=7)
    assert bucket.ledger.get().reference == "order-9"
