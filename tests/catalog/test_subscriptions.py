from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from catalog.models import Product, RecurringCharge
from catalog.pricing import Phase
from catalog.subscriptions import plan_change_quote, product_plan_change, product_terminate, recurring_charges_post
from catalog.tasks import recurring_charges_run
from charging.models import Bucket, LedgerEntry, LineRatePlan
from tests.catalog.factories import PlanFactory, promotion
from tests.factories import LineFactory

pytestmark = pytest.mark.django_db

AMS = ZoneInfo("Europe/Amsterdam")


def at(year, month, day, hour=12):
    return datetime(year, month, day, hour, tzinfo=AMS)


def subscribed(plan, *, started, phases=(), promo=None):
    line = LineFactory()
    return Product.objects.create(
        customer=line.billing_account.customer,
        billing_account=line.billing_account,
        offering=plan,
        line=line,
        status=Product.Status.ACTIVE,
        recurring_price=plan.recurring_price,
        contract_months=plan.contract_months,
        promotion=promo,
        promotion_phases=[p.as_json() for p in phases],
        started_at=started,
        contract_ends_at=started.replace(year=started.year + plan.contract_months // 12)
        if plan.contract_months
        else None,
    )


def recurring(product):
    return list(
        LedgerEntry.objects.filter(billing_account=product.billing_account, kind=LedgerEntry.Kind.RECURRING)
        .order_by("created_at", "pk")
        .values_list("amount", "reason")
    )


def test_each_period_is_charged_once_however_often_the_task_runs():
    plan = PlanFactory(name="Unlimited", recurring_price=Decimal("30.00"))
    product = subscribed(plan, started=at(2026, 4, 1, 9))

    assert recurring_charges_post(at=at(2026, 5, 3)) == 2
    assert recurring_charges_post(at=at(2026, 5, 20)) == 0
    assert recurring_charges_post(at=at(2026, 5, 31)) == 0

    assert recurring(product) == [
        (Decimal("-30.0000"), "Unlimited, April 2026"),
        (Decimal("-30.0000"), "Unlimited, May 2026"),
    ]
    assert RecurringCharge.objects.filter(product=product).count() == 2


def test_the_periodic_task_catches_up_to_the_current_period():
    plan = PlanFactory(recurring_price=Decimal("30.00"))
    product = subscribed(plan, started=at(2026, 1, 1, 9))

    first = recurring_charges_run.delay().result
    again = recurring_charges_run.delay().result

    assert first >= 1
    assert again == 0
    assert RecurringCharge.objects.filter(product=product).count() == first


def test_the_first_period_is_prorated_from_the_day_the_plan_started_in_the_accounts_time_zone():
    plan = PlanFactory(name="Unlimited", recurring_price=Decimal("30.00"))
    # 22:30 UTC on 20 April is already 21 April in Amsterdam: ten days of a thirty-day month.
    product = subscribed(plan, started=datetime(2026, 4, 20, 22, 30, tzinfo=ZoneInfo("UTC")))

    recurring_charges_post(at=at(2026, 4, 25))

    assert recurring(product) == [(Decimal("-10.0000"), "Unlimited, April 2026, 10 of 30 days")]


def test_six_months_free_then_the_normal_rate_shows_on_every_charge():
    plan = PlanFactory(name="Unlimited", recurring_price=Decimal("30.00"))
    promo = promotion("Summer deal", [plan], [(6, "free", "0")])
    product = subscribed(plan, started=at(2026, 1, 1, 9), phases=[Phase(6, "free")], promo=promo)

    recurring_charges_post(at=at(2026, 8, 15))

    charges = recurring(product)
    assert [amount for amount, _ in charges] == [Decimal("0.0000")] * 6 + [Decimal("-30.0000")] * 2
    assert charges[0][1] == "Unlimited, January 2026 (Summer deal: free for 6 months)"
    assert charges[6][1] == "Unlimited, July 2026"


def test_a_suspended_or_terminated_product_is_not_charged():
    plan = PlanFactory(recurring_price=Decimal("30.00"))
    product = subscribed(plan, started=at(2026, 4, 1))
    Product.objects.filter(pk=product.pk).update(status=Product.Status.SUSPENDED)

    assert recurring_charges_post(at=at(2026, 5, 3)) == 0
    assert recurring(product) == []


def test_an_upgrade_mid_period_credits_the_unused_days_and_charges_the_new_plan_for_them():
    old = PlanFactory(name="Basic", recurring_price=Decimal("15.00"), contract_months=0)
    new = PlanFactory(name="Unlimited", recurring_price=Decimal("45.00"), contract_months=24)
    product = subscribed(old, started=at(2026, 3, 10))
    recurring_charges_post(at=at(2026, 4, 1))

    changed = product_plan_change(product=product, offering=new, at=at(2026, 4, 21))

    entries = list(
        LedgerEntry.objects.filter(billing_account=product.billing_account, money_balance__isnull=False)
        .order_by("pk")
        .values_list("kind", "amount")
    )
    assert entries == [
        ("recurring", Decimal("-10.6452")),  # 22 of 31 March days
        ("recurring", Decimal("-15.0000")),  # April
        ("refund", Decimal("5.0000")),  # 10 of 30 April days unused
        ("recurring", Decimal("-15.0000")),  # the new plan for those 10 days
    ]
    product.refresh_from_db()
    assert product.status == Product.Status.TERMINATED
    assert changed.status == Product.Status.ACTIVE
    assert changed.line == product.line
    assert LineRatePlan.objects.get(line=product.line).rate_plan == new.rate_plan
    assert Bucket.objects.filter(line=product.line, definition__offerings=new).count() == 1


def test_leaving_a_contract_early_costs_the_termination_fee():
    old = PlanFactory(recurring_price=Decimal("30.00"), contract_months=24, termination_fee_percent=50)
    cheaper = PlanFactory(name="Basic", recurring_price=Decimal("15.00"), contract_months=0)
    product = subscribed(old, started=at(2026, 1, 1, 9))
    recurring_charges_post(at=at(2026, 4, 1))

    quote = plan_change_quote(product=product, offering=cheaper, at=at(2026, 4, 16))

    # 20 periods left (May 2026 .. December 2027) at 30, half of it
    assert quote.termination_fee == Decimal("300.0000")
    assert quote.credit == Decimal("15.0000")
    assert quote.new_charge == Decimal("7.5000")
    assert quote.early_upgrade is False


def test_an_upgrade_near_the_end_of_the_contract_costs_no_fee():
    old = PlanFactory(recurring_price=Decimal("30.00"), contract_months=24, early_upgrade_months=3)
    dearer = PlanFactory(recurring_price=Decimal("40.00"), contract_months=24)
    product = subscribed(old, started=at(2026, 1, 1, 9))

    quote = plan_change_quote(product=product, offering=dearer, at=at(2027, 11, 2))

    assert quote.termination_fee == Decimal("0.0000")
    assert quote.early_upgrade is True


def test_terminating_a_plan_in_contract_credits_the_unused_days_and_charges_the_fee():
    plan = PlanFactory(name="Unlimited", recurring_price=Decimal("30.00"), contract_months=24)
    product = subscribed(plan, started=at(2026, 1, 1, 9))
    recurring_charges_post(at=at(2026, 4, 1))

    product_terminate(product=product, reason="moving abroad", at=at(2026, 4, 16))

    product.refresh_from_db()
    assert product.status == Product.Status.TERMINATED
    entries = list(
        LedgerEntry.objects.filter(reference=f"product-{product.pk}-termination")
        .order_by("pk")
        .values_list("kind", "amount")
    )
    assert entries == [("refund", Decimal("15.0000")), ("one_off", Decimal("-300.0000"))]
    assert recurring_charges_post(at=at(2026, 6, 1)) == 0


def test_a_termination_without_a_reason_changes_nothing():
    from catalog.errors import CatalogError

    product = subscribed(PlanFactory(), started=at(2026, 1, 1, 9))

    with pytest.raises(CatalogError, match="say why"):
        product_terminate(product=product, reason=" ")

    product.refresh_from_db()
    assert product.status == Product.Status.ACTIVE
    assert not LedgerEntry.objects.exists()
