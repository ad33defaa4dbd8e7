"""The batch path's shortcut for records one allowance covers whole charges exactly what the
full plan charges: same balances, limits, events and ledger, record by record."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from charging import batch_charging
from charging.ledger import ledger_mismatches
from charging.models import Bucket, LedgerEntry, MoneyBalance, NodeLimit, Tariff, ThresholdNotice, UsageEvent
from charging.offline import usage_batch_ingest
from charging.services import bucket_grant, money_post
from charging.units import Service, Unit
from charging.usage_events import usage_events_charge
from enterprise.models import SteeringRule
from portal.services import billing_account_open
from tests.charging.trees import MB, company_tree, limit_on
from tests.factories import CustomerFactory, allowances_valid_from

pytestmark = pytest.mark.django_db


def a_busy_company():
    """Three lines under a pool that runs out mid-batch, a line's own allowance drawn first, one
    that only becomes valid during the batch, a blocking and an overage limit, and a line whose
    roaming a steering rule sends to a personal account."""
    now = timezone.now()
    tree = company_tree(lines=3, pool_units=30 * MB, credit=Decimal("100"))
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    bucket_grant(line=tree.lines[0], name="Own", unit=Unit.BYTES, quantity=5 * MB, priority=10)
    later = bucket_grant(line=tree.lines[1], name="Later", unit=Unit.BYTES, quantity=6 * MB, priority=5)
    allowances_valid_from([later], now - timedelta(minutes=30))
    limit_on(tree.team, 40 * MB, on_exceed="overage", overage_price=Decimal("0.10"), overage_per_units=MB)
    limit_on(tree.devices[1], 8 * MB)
    personal = billing_account_open(customer=CustomerFactory())
    money_post(billing_account=personal, amount=Decimal("10"), kind="topup", reason="Top-up")
    tree.devices[2].personal_account = personal
    tree.devices[2].save()
    SteeringRule.objects.create(company=tree.company, name="Roaming is personal", zone="roam_eu", payer="personal")
    records = []
    for n in range(24):
        at = now - timedelta(minutes=60 - 2 * n)
        records.append(
            {
                "external_id": f"cdr-{n}",
                "msisdn": tree.lines[n % 3].msisdn,
                "service": "data",
                "quantity": (1 + n % 4) * MB,
                "zone": "roam_eu" if n % 5 == 0 else "home",
                "occurred_at": at.isoformat(),
            }
        )
    with transaction.atomic():
        result = usage_batch_ingest(payloads=records, source="test")
    return [outcome.event_id for outcome in result.outcomes]


def books() -> dict:
    """Everything a charge moves, comparable across two runs over the same rows."""
    return {
        "events": sorted(
            UsageEvent.objects.values_list("external_id", "status", "units_from_buckets", "amount_charged")
        ),
        "buckets": sorted(Bucket.objects.values_list("pk", "remaining", "reserved")),
        "limits": sorted(NodeLimit.objects.values_list("pk", "used", "reserved")),
        "money": sorted(MoneyBalance.objects.values_list("pk", "amount", "period_spent")),
        "ledger": sorted(
            LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).values_list(
                "usage_event__external_id", "bucket_id", "money_balance_id", "units", "amount", "reason", "reference"
            ),
            key=str,
        ),
        "notices": sorted(
            ThresholdNotice.objects.values_list("bucket_id", "limit_id", "percent", "used", "of"), key=str
        ),
    }


def charged_books(event_ids: list[int]) -> dict:
    """The books after charging the batch, rolled back again afterwards."""
    with transaction.atomic():
        usage_events_charge(event_ids=event_ids)
        found = books()
        assert ledger_mismatches() == []
        transaction.set_rollback(True)
    return found


def test_the_shortcut_charges_exactly_what_the_full_plan_charges(monkeypatch):
    event_ids = a_busy_company()
    taken = []
    shortcut = batch_charging.AllowanceShortcut.charge

    def counted(self, event, ledger):
        charged = shortcut(self, event, ledger)
        taken.append(charged)
        return charged

    monkeypatch.setattr(batch_charging.AllowanceShortcut, "charge", counted)
    with_shortcut = charged_books(event_ids)
    monkeypatch.setattr(batch_charging.AllowanceShortcut, "charge", lambda self, event, ledger: False)
    full_plan = charged_books(event_ids)

    assert with_shortcut == full_plan
    assert any(taken)  # both ways were exercised
    assert not all(taken)
    assert {status for _, status, *_ in full_plan["events"]} == {UsageEvent.Status.CHARGED}
    assert any(amount for *_, amount in full_plan["events"])  # money and overage were charged too


def test_a_batch_charged_again_changes_nothing():
    event_ids = a_busy_company()
    usage_events_charge(event_ids=event_ids)
    before = books()

    assert usage_events_charge(event_ids=event_ids) == 0
    assert books() == before


def test_a_batch_posts_one_entry_per_balance_and_day_that_its_records_add_up_to():
    event_ids = a_busy_company()
    usage_events_charge(event_ids=event_ids)

    events = UsageEvent.objects.filter(pk__in=event_ids)
    (reference,) = set(events.values_list("ledger_reference", flat=True))
    entries = list(LedgerEntry.objects.filter(reference=reference))
    balances = [(e.bucket_id, e.money_balance_id, e.reason, timezone.localdate(e.created_at)) for e in entries]
    assert len(balances) == len(set(balances))  # one entry per balance, reason and day
    assert len(entries) < len(event_ids)
    assert -sum(e.units for e in entries) == sum(events.values_list("units_from_buckets", flat=True))
    assert -sum(e.amount for e in entries) == sum(events.values_list("amount_charged", flat=True))
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exclude(reference=reference).count() == 0
