"""Edges of the engine: a payer that changes mid-session, records from a closed period,
per-source id spaces, late-priced usage, policies on offline usage."""

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from charging.events import event_charge
from charging.ledger import ledger_mismatches
from charging.models import MoneyBalance, NodeLimit, Tariff, TariffRate, UsageEvent
from charging.online import session_start, session_terminate, session_update
from charging.periods import period_start
from charging.requests import ChargingError
from charging.services import money_post
from charging.units import Service
from charging.usage_events import usage_event_ingest, usage_events_charge
from enterprise.models import SteeringRule
from portal.services import billing_account_open
from tests.charging.trees import MB, company_tree, limit_on
from tests.factories import CustomerFactory, LineFactory, allowances_valid_from, data_bucket

pytestmark = pytest.mark.django_db


def local(hour: int, minute: int = 0, days_ago: int = 0):
    """A local time of today (or days before), for usage placed around a tariff band."""
    moment = timezone.localtime() - timedelta(days=days_ago)
    return moment.replace(hour=hour, minute=minute, second=0, microsecond=0)


def with_personal_account(tree, funds=Decimal("10")):
    personal = billing_account_open(customer=CustomerFactory())
    money_post(billing_account=personal, amount=funds, kind="topup", reason="Top-up")
    tree.devices[0].personal_account = personal
    tree.devices[0].save()
    return personal


def test_a_limit_hold_is_released_even_when_the_payer_changed_during_the_session():
    # Yesterday evening, whatever the time the test runs: the pool was granted before it, and
    # the team's limit counts from the start of its month.
    started, ended = local(17, 58, days_ago=1), local(18, 1, days_ago=1)
    tree = company_tree(lines=1)
    allowances_valid_from([tree.pool], started - timedelta(days=1))
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    with_personal_account(tree)
    team = limit_on(tree.team, 50 * MB, period_start=period_start(period=NodeLimit.Period.MONTH, at=started))
    SteeringRule.objects.create(
        company=tree.company, name="Evenings", time_from=time(18), time_to=time(7), payer="personal"
    )
    msisdn = tree.lines[0].msisdn

    session_start(session_id="s", msisdn=msisdn, service="data", requested_units=10 * MB, at=started)
    session_terminate(session_id="s", request_number=1, used_units=4 * MB, at=ended)

    team.refresh_from_db()
    assert (team.used, team.reserved) == (4 * MB, 0)
    assert ledger_mismatches() == []


def test_an_offline_record_of_a_closed_day_does_not_count_in_today_and_each_record_picks_its_own_payer():
    tree = company_tree(lines=1, pool_units=500 * MB)
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    personal = with_personal_account(tree)
    daily = limit_on(tree.team, 100 * MB, period=NodeLimit.Period.DAY)
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    SteeringRule.objects.create(
        company=tree.company,
        name="Roaming yesterday was personal",
        zone="roam_eu",
        weekdays=[timezone.localtime(yesterday).weekday()],
        payer="personal",
    )
    records = [
        ("y", 30 * MB, yesterday, "home"),  # a day already closed: counts in no limit of today
        ("r", 10 * MB, yesterday, "roam_eu"),  # the rule matches its own day: the user pays
        ("t", 50 * MB, now, "roam_eu"),  # today the rule does not match
    ]
    ids = []
    for external_id, quantity, at, zone in records:
        payload = {"external_id": external_id, "msisdn": tree.lines[0].msisdn, "service": "data"}
        payload.update(quantity=quantity, occurred_at=at.isoformat(), zone=zone)
        with transaction.atomic():
            ids.append(usage_event_ingest(payload=payload)[0].pk)

    usage_events_charge(event_ids=ids)

    daily.refresh_from_db()
    assert daily.used == 50 * MB
    assert MoneyBalance.objects.get(billing_account=personal).amount == Decimal("9.9000")
    assert ledger_mismatches() == []


def test_an_overage_policy_prices_offline_usage_as_it_does_online():
    def charge_online(tree):
        session_start(session_id="o", msisdn=tree.lines[0].msisdn, service="data", requested_units=10 * MB)
        session_terminate(session_id="o", request_number=1, used_units=10 * MB)

    def charge_offline(tree):
        with transaction.atomic():
            event, _ = usage_event_ingest(
                payload={"external_id": "x", "msisdn": tree.lines[0].msisdn, "service": "data", "quantity": 10 * MB}
            )
        usage_events_charge(event_ids=[event.pk])

    owed = []
    for name, charge in (("Online", charge_online), ("Offline", charge_offline)):
        tree = company_tree(lines=1, credit=Decimal("100"), name=name)
        limit_on(tree.root, 5 * MB, on_exceed="overage", overage_price=Decimal("0.10"), overage_per_units=MB)
        charge(tree)
        owed.append(MoneyBalance.objects.get(billing_account=tree.account).amount)

    assert owed == [Decimal("-0.5000"), Decimal("-0.5000")]


def test_event_and_session_ids_are_separate_per_source():
    line = LineFactory()
    Tariff.objects.create(name="SMS", service=Service.SMS, price=Decimal("0.09"), per_units=1, is_default=True)
    money_post(billing_account=line.billing_account, amount=Decimal("1"), kind="topup", reason="Top-up")
    data_bucket(line, 100 * MB)

    first = event_charge(event_id="123", msisdn=line.msisdn, service="sms", source="smsc-a")
    second = event_charge(event_id="123", msisdn=line.msisdn, service="sms", source="smsc-b")
    session_start(session_id="s", msisdn=line.msisdn, service="data", requested_units=MB, source="pgw-a")
    with pytest.raises(ChargingError) as foreign:
        session_update(session_id="s", request_number=1, used_units=MB, source="pgw-b")

    assert first["amount"] == second["amount"] == "0.0900"
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("0.8200")
    assert (foreign.value.code, foreign.value.status) == ("unknown_session", 404)


def test_a_long_external_id_fits_its_ledger_reference():
    line = LineFactory()
    data_bucket(line, 100 * MB)
    with transaction.atomic():
        event, _ = usage_event_ingest(
            payload={"external_id": "x" * 100, "msisdn": line.msisdn, "service": "data", "quantity": MB}
        )

    usage_events_charge(event_ids=[event.pk])

    assert UsageEvent.objects.get(pk=event.pk).status == UsageEvent.Status.CHARGED


def test_usage_is_priced_from_when_it_was_granted_not_when_it_was_reported():
    line = LineFactory()
    voice = Tariff.objects.create(
        name="Voice", service=Service.VOICE, price=Decimal("0.01"), per_units=60, is_default=True
    )
    TariffRate.objects.create(tariff=voice, band_start=time(8), band_end=time(18), price=Decimal("0.10"))
    money_post(billing_account=line.billing_account, amount=Decimal("10"), kind="topup", reason="Top-up")
    granted_at = local(17, 50, days_ago=1)

    session_start(session_id="call", msisdn=line.msisdn, service="voice", requested_units=3600, at=granted_at)
    ended = session_terminate(
        session_id="call", request_number=1, used_units=19 * 60, at=granted_at + timedelta(minutes=30)
    )

    assert ended["amount"] == "1.0900"  # 10 peak minutes at 0.10, then 9 at 0.01


def test_volume_tiers_do_not_count_the_session_twice_when_it_reports_in_pieces():
    line = LineFactory()
    tariff = Tariff.objects.create(
        name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True
    )
    TariffRate.objects.create(tariff=tariff, tier_from=100 * MB, price=Decimal("0.005"))
    money_post(billing_account=line.billing_account, amount=Decimal("10"), kind="topup", reason="Top-up")

    session_start(session_id="s", msisdn=line.msisdn, service="data", requested_units=60 * MB)
    session_update(session_id="s", request_number=1, used_units=60 * MB, requested_units=60 * MB)
    ended = session_terminate(session_id="s", request_number=2, used_units=60 * MB)

    assert ended["amount"] == "0.5000"  # 40 MB at 0.01 up to the tier, then 20 MB at 0.005
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("8.9000")
