from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charging.events import event_charge, event_refund
from charging.ledger import ledger_mismatches
from charging.models import Bucket, ChargingSession, LedgerEntry, MoneyBalance, NodeLimit, Reservation, Tariff
from charging.online import session_start, session_terminate, session_update
from charging.online.database import reservations_expire
from charging.requests import ChargingError
from charging.services import money_post
from charging.units import Service
from enterprise.models import SteeringRule
from portal.models import BillingAccount
from portal.services import billing_account_open
from tests.charging.trees import MB, company_tree, limit_on
from tests.factories import CustomerFactory, LineFactory, data_bucket, default_data_tariff

pytestmark = pytest.mark.django_db


def start(line, session_id="s-1", units=10 * MB, **extra):
    return session_start(session_id=session_id, msisdn=line.msisdn, service="data", requested_units=units, **extra)


def counters(*objs):
    out = []
    for obj in objs:
        obj.refresh_from_db()
        if isinstance(obj, Bucket):
            out.append((obj.remaining, obj.reserved))
        elif isinstance(obj, NodeLimit):
            out.append((obj.used, obj.reserved))
        else:
            out.append((obj.amount, obj.reserved))
    return out


def test_session_reserves_settles_and_releases_what_it_did_not_use():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)

    granted = start(line, units=30 * MB)
    assert (granted["granted_units"], granted["final_unit_action"]) == (30 * MB, None)
    assert counters(bucket) == [(100 * MB, 30 * MB)]

    updated = session_update(session_id="s-1", request_number=1, used_units=20 * MB, requested_units=30 * MB)
    assert (updated["used_units"], updated["granted_units"]) == (20 * MB, 30 * MB)
    assert counters(bucket) == [(80 * MB, 30 * MB)]

    ended = session_terminate(session_id="s-1", request_number=2, used_units=5 * MB)
    assert ended["status"] == "terminated"
    assert counters(bucket) == [(75 * MB, 0)]
    assert ChargingSession.objects.get(session_id="s-1").used_units == 25 * MB
    assert ledger_mismatches() == []


def test_a_repeated_request_gets_the_first_answer_and_changes_nothing():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    first = start(line, units=30 * MB)
    session_update(session_id="s-1", request_number=1, used_units=10 * MB, requested_units=10 * MB)

    assert start(line, units=50 * MB) == first
    again = session_update(session_id="s-1", request_number=1, used_units=30 * MB, requested_units=0)

    assert again["used_units"] == 10 * MB
    assert counters(bucket) == [(90 * MB, 10 * MB)]
    assert LedgerEntry.objects.filter(reference="session:network:s-1").count() == 1


def test_out_of_order_and_late_requests_are_refused_without_changes():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    start(line, units=30 * MB)

    with pytest.raises(ChargingError) as skipped:
        session_update(session_id="s-1", request_number=2, used_units=5 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=5 * MB)
    with pytest.raises(ChargingError) as late:
        session_update(session_id="s-1", request_number=2, used_units=5 * MB)
    session_start(session_id="s-2", msisdn=line.msisdn, service="data", requested_units=MB)
    with pytest.raises(ChargingError) as overrun:
        session_update(session_id="s-2", request_number=1, used_units=2 * MB)

    assert (skipped.value.code, skipped.value.status) == ("out_of_order", 409)
    assert (late.value.code, late.value.status) == ("session_closed", 409)
    assert (overrun.value.code, overrun.value.field) == ("used_exceeds_grant", "used_units")
    assert counters(bucket) == [(95 * MB, MB)]


def test_usage_past_allowances_is_reserved_from_money_and_the_last_grant_redirects_to_top_up():
    line = LineFactory()
    default_data_tariff()  # 0.01 per MB
    money_post(billing_account=line.billing_account, amount=Decimal("0.05"), kind="topup", reason="Top-up")
    bucket = data_bucket(line, 2 * MB)

    answer = start(line, units=20 * MB)

    balance = MoneyBalance.objects.get(billing_account=line.billing_account)
    assert (answer["granted_units"], answer["final_unit_action"]) == (7 * MB, "redirect")
    assert balance.reserved == Decimal("0.0500")
    session_terminate(session_id="s-1", request_number=1, used_units=4 * MB)
    assert counters(bucket, balance) == [(0, 0), (Decimal("0.0300"), Decimal(0))]
    assert ledger_mismatches() == []


def test_a_pool_is_shared_down_the_tree_and_every_limit_on_the_path_caps_the_grant():
    tree = company_tree(lines=2, pool_units=100 * MB)
    team_limit = limit_on(tree.team, 25 * MB)
    device_limit = limit_on(tree.devices[0], 15 * MB)

    first = start(tree.lines[0], "a", units=20 * MB)
    second = start(tree.lines[1], "b", units=20 * MB)

    assert (first["granted_units"], first["final_unit_action"]) == (15 * MB, "terminate")
    assert (second["granted_units"], second["final_unit_action"]) == (10 * MB, "terminate")
    assert counters(tree.pool, team_limit, device_limit) == [(100 * MB, 25 * MB), (0, 25 * MB), (0, 15 * MB)]
    session_terminate(session_id="a", request_number=1, used_units=15 * MB)
    session_terminate(session_id="b", request_number=1, used_units=1 * MB)
    assert counters(tree.pool, team_limit, device_limit) == [(84 * MB, 0), (16 * MB, 0), (15 * MB, 0)]
    assert ledger_mismatches() == []


def test_a_limit_that_throttles_goes_on_granting_and_says_restrict():
    tree = company_tree(lines=1, pool_units=100 * MB)
    limit_on(tree.division, 5 * MB, on_exceed=NodeLimit.OnExceed.THROTTLE)

    answer = start(tree.lines[0], units=8 * MB)

    assert (answer["granted_units"], answer["throttled"], answer["final_unit_action"]) == (8 * MB, True, "restrict")


def test_overage_past_a_limit_is_charged_to_the_company_at_the_overage_price():
    tree = company_tree(lines=1, pool_units=100 * MB, credit=Decimal("100"))
    limit = limit_on(
        tree.root,
        5 * MB,
        on_exceed=NodeLimit.OnExceed.OVERAGE,
        overage_price=Decimal("0.10"),
        overage_per_units=MB,
    )

    start(tree.lines[0], units=8 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=8 * MB)

    money = MoneyBalance.objects.get(billing_account=tree.account)
    assert counters(tree.pool, limit) == [(95 * MB, 0), (8 * MB, 0)]
    assert money.amount == Decimal("-0.3000")
    assert ledger_mismatches() == []


def test_past_a_limit_set_to_personal_the_user_pays_from_their_own_account():
    tree = company_tree(lines=1, pool_units=100 * MB)
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    personal = billing_account_open(customer=CustomerFactory())
    money_post(billing_account=personal, amount=Decimal("10"), kind="topup", reason="Top-up")
    tree.devices[0].personal_account = personal
    tree.devices[0].save()
    limit_on(tree.team, 5 * MB, on_exceed=NodeLimit.OnExceed.PERSONAL)

    start(tree.lines[0], units=8 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=8 * MB)

    assert counters(tree.pool) == [(95 * MB, 0)]
    assert MoneyBalance.objects.get(billing_account=personal).amount == Decimal("9.9700")
    assert ledger_mismatches() == []


def test_byod_rule_steers_roaming_data_to_the_personal_account_and_leaves_the_pool_alone():
    tree = company_tree(lines=1, pool_units=100 * MB)
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    personal = billing_account_open(customer=CustomerFactory())
    money_post(billing_account=personal, amount=Decimal("1"), kind="topup", reason="Top-up")
    tree.devices[0].personal_account = personal
    tree.devices[0].save()
    team_limit = limit_on(tree.team, 50 * MB)
    SteeringRule.objects.create(
        company=tree.company, name="Roaming is personal", service="data", zone="roam_eu", payer="personal"
    )

    start(tree.lines[0], "roam", units=10 * MB, zone="roam_eu")
    session_terminate(session_id="roam", request_number=1, used_units=10 * MB)
    start(tree.lines[0], "home", units=10 * MB)
    session_terminate(session_id="home", request_number=1, used_units=10 * MB)

    assert MoneyBalance.objects.get(billing_account=personal).amount == Decimal("0.9000")
    assert counters(tree.pool, team_limit) == [(90 * MB, 0), (10 * MB, 0)]


def test_byod_rule_by_time_of_day_matches_only_inside_its_window():
    from charging.steering import steering_payer

    rule = SteeringRule(name="Evenings are personal", time_from=time(19), time_to=time(7), payer="personal")
    evening = timezone.localtime().replace(hour=22, minute=0)
    noon = evening.replace(hour=12)

    assert steering_payer(rules=[rule], service="data", zone="home", at=evening) == "personal"
    assert steering_payer(rules=[rule], service="data", zone="home", at=noon) == "corporate"


def test_the_customers_own_spending_cap_stops_a_postpaid_line_before_its_credit_limit():
    customer = CustomerFactory()
    account = BillingAccount.objects.create(
        customer=customer, number="BA-CAP", kind=BillingAccount.Kind.POSTPAID, credit_limit=Decimal("100")
    )
    line = LineFactory(billing_account=account)
    default_data_tariff()
    MoneyBalance.objects.create(billing_account=account, spending_cap=Decimal("0.10"))

    answer = start(line, units=50 * MB)

    assert (answer["granted_units"], answer["final_unit_action"]) == (10 * MB, "redirect")


def test_a_vanished_session_has_its_grant_released_by_expiry():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    start(line, units=30 * MB)

    assert reservations_expire(now=timezone.now() + timedelta(minutes=1)) == 0
    assert reservations_expire(now=timezone.now() + timedelta(hours=1)) == 1

    assert counters(bucket) == [(100 * MB, 0)]
    assert Reservation.objects.get().status == "expired"
    assert ChargingSession.objects.get().status == "expired"


def test_usage_reported_after_expiry_is_still_charged_up_to_the_last_grant():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    start(line, units=30 * MB)
    reservations_expire(now=timezone.now() + timedelta(hours=1))

    with pytest.raises(ChargingError) as too_much:
        session_terminate(session_id="s-1", request_number=1, used_units=31 * MB)
    late = session_terminate(session_id="s-1", request_number=1, used_units=12 * MB)

    assert (too_much.value.code, late["used_units"], late["granted_units"]) == ("used_exceeds_grant", 12 * MB, 0)
    assert counters(bucket) == [(88 * MB, 0)]
    assert ledger_mismatches() == []


def test_a_single_event_is_charged_once_and_refunded_once():
    line = LineFactory()
    sms = Tariff.objects.create(name="SMS", service=Service.SMS, price=Decimal("0.09"), per_units=1, is_default=True)
    money_post(billing_account=line.billing_account, amount=Decimal("1"), kind="topup", reason="Top-up")

    first = event_charge(event_id="sms-1", msisdn=line.msisdn, service=sms.service)
    again = event_charge(event_id="sms-1", msisdn=line.msisdn, service=sms.service)
    refund = event_refund(event_id="sms-1")
    refund_again = event_refund(event_id="sms-1")

    assert first == again
    assert first["amount"] == "0.0900"
    assert refund == refund_again
    assert refund["amount_returned"] == "0.0900"
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("1.0000")
    assert ledger_mismatches() == []


def test_a_content_purchase_is_charged_at_its_price_or_refused_whole():
    line = LineFactory()
    money_post(billing_account=line.billing_account, amount=Decimal("5"), kind="topup", reason="Top-up")

    bought = event_charge(event_id="game", msisdn=line.msisdn, service="content", price=Decimal("4.99"))
    with pytest.raises(ChargingError) as refused:
        event_charge(event_id="film", msisdn=line.msisdn, service="content", price=Decimal("3.99"))

    assert bought["amount"] == "4.9900"
    assert (refused.value.code, refused.value.status) == ("insufficient_balance", 402)
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("0.0100")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service": "fax"}, "service"),
        ({"zone": "mars"}, "zone"),
        ({"requested_units": -1}, "requested_units"),
        ({"msisdn": "0000"}, "msisdn"),
        ({"session_id": ""}, "session_id"),
    ],
)
def test_malformed_requests_name_the_field_and_change_nothing(change, field):
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    request = {"session_id": "s-1", "msisdn": line.msisdn, "service": "data", "requested_units": MB, **change}

    with pytest.raises(ChargingError) as refused:
        session_start(**request)

    assert refused.value.field == field
    assert counters(bucket) == [(100 * MB, 0)]
    assert not ChargingSession.objects.exists()


def test_volume_tiers_count_what_the_line_used_earlier_in_the_month():
    from charging.models import TariffRate

    line = LineFactory()
    tariff = default_data_tariff()  # 0.01 per MB up to 100 MB this month
    TariffRate.objects.create(tariff=tariff, tier_from=100 * MB, price=Decimal("0.005"))
    money_post(billing_account=line.billing_account, amount=Decimal("10"), kind="topup", reason="Top-up")
    start(line, "earlier", units=90 * MB)
    session_terminate(session_id="earlier", request_number=1, used_units=90 * MB)

    start(line, "later", units=20 * MB)
    ended = session_terminate(session_id="later", request_number=1, used_units=20 * MB)

    assert ended["amount"] == "0.1500"  # 10 MB at 0.01, then 10 MB past the tier at 0.005
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("8.9500")


def test_a_session_granted_nothing_that_goes_quiet_is_ended_by_expiry():
    line = LineFactory()
    start(line, units=10 * MB)  # no allowance, no tariff: nothing granted

    assert reservations_expire(now=timezone.now() + timedelta(hours=1)) == 1

    assert ChargingSession.objects.get().status == "expired"
