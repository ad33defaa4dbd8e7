"""Races on PostgreSQL: many threads at once, then count what happened."""

import threading
import time
from decimal import Decimal

import pytest

from catalog import fulfilment, services
from catalog.errors import CatalogError
from catalog.fulfilment import fulfilment_step_execute
from catalog.models import Channel, FulfilmentStep, ProductOrder, Voucher
from catalog.services import cart_item_add, cart_voucher_apply, order_place
from catalog.tasks import fulfilment_step_run
from charging.models import Bucket, LedgerEntry, MoneyBalance
from charging.services import money_post
from portal.models import BillingAccount, Line
from tests.catalog.factories import AccessoryFactory, cart_for, promotion, shop, voucher
from tests.concurrency import run_together
from tests.factories import BillingAccountFactory
from tests.services import require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_voucher_limited_to_three_uses_is_used_three_times_by_eight_concurrent_orders(monkeypatch):
    require_postgres()
    monkeypatch.setattr(fulfilment_step_run, "delay", lambda step_id: None)  # fulfilment is not the point here
    s = shop()
    code = voucher("RUSH", promotion("Rush", [s["other"]], [(1, "free", "0")], requires_voucher=True), max_uses=3)
    carts = []
    for _ in range(8):
        cart, account = cart_for()
        cart_item_add(cart=cart, offering=s["other"])
        cart_voucher_apply(cart=cart, code="RUSH")
        carts.append((cart, account.customer.user))

    def place(cart, user):
        return lambda: order_place(cart=cart, placed_by=user, channel=Channel.WEB)

    results = run_together([place(cart, user) for cart, user in carts])

    placed = [r for r in results if isinstance(r, ProductOrder)]
    refused = [r for r in results if isinstance(r, CatalogError)]
    assert (len(placed), len(refused)) == (3, 5)
    assert {r.message for r in refused} == {"this voucher has been used up"}
    assert Voucher.objects.get(pk=code.pk).uses == 3
    assert ProductOrder.objects.filter(voucher=code).count() == 3


def test_a_step_task_delivered_four_times_at_once_has_one_effect(monkeypatch):
    require_postgres()
    queued: list[int] = []
    monkeypatch.setattr(fulfilment_step_run, "delay", queued.append)
    s = shop()
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=s["other"])
    order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    provision = order.steps.get(kind=FulfilmentStep.Kind.PROVISION)
    queued.clear()

    run_together([lambda: fulfilment_step_run.apply(args=(provision.pk,)).result for _ in range(4)])
    activate = order.steps.get(kind=FulfilmentStep.Kind.ACTIVATE)
    run_together([lambda: fulfilment_step_run.apply(args=(activate.pk,)).result for _ in range(4)])

    order.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    assert Line.objects.count() == 1
    assert Bucket.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.RECURRING).count() == 1
    assert queued == [activate.pk]  # the next step was started once


def test_a_checkout_while_an_earlier_order_is_charged_counts_that_order_once(monkeypatch):
    """The earlier order's phone is charged (it leaves what open orders still owe, and enters
    the balance) while the checkout reads both: under the account's money lock the checkout
    sees the charge either wholly before or wholly after, never neither."""
    require_postgres()
    monkeypatch.setattr(fulfilment_step_run, "delay", lambda step_id: None)  # steps run by hand here
    account = BillingAccountFactory(kind=BillingAccount.Kind.PREPAID)
    money_post(billing_account=account, amount=Decimal("20"), kind=LedgerEntry.Kind.TOPUP, reason="Top-up")
    cart, _ = cart_for(account)
    cart_item_add(cart=cart, offering=AccessoryFactory(one_off_price=Decimal("15")))
    earlier = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    ship = earlier.steps.get()
    cart, _ = cart_for(account)
    cart_item_add(cart=cart, offering=AccessoryFactory(one_off_price=Decimal("10")))

    charged, checkout_reading, earlier_committed = threading.Event(), threading.Event(), threading.Event()
    post, balance_open, pending = fulfilment.money_post, services.money_balance_open, services.one_off_charges_pending

    def post_then_wait_for_the_checkout(**kwargs):
        entry = post(**kwargs)
        charged.set()
        checkout_reading.wait(5)
        time.sleep(0.3)  # the checkout reads the balance meanwhile, if nothing holds it back
        return entry

    def money_balance_open(**kwargs):
        checkout_reading.set()
        return balance_open(**kwargs)

    def pending_once_the_charge_committed(**kwargs):
        earlier_committed.wait(5)
        return pending(**kwargs)

    monkeypatch.setattr(fulfilment, "money_post", post_then_wait_for_the_checkout)
    monkeypatch.setattr(services, "money_balance_open", money_balance_open)
    monkeypatch.setattr(services, "one_off_charges_pending", pending_once_the_charge_committed)

    def charge_the_earlier_order():
        step = fulfilment_step_execute(step_id=ship.pk)
        earlier_committed.set()
        return step

    def checkout():
        charged.wait(5)
        return order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    step, refused = run_together([charge_the_earlier_order, checkout])

    assert step.state == FulfilmentStep.State.DONE
    assert isinstance(refused, CatalogError)
    assert refused.message == f"This order costs €10.00 today; account {account.number} can cover €5.00."
    assert list(ProductOrder.objects.values_list("pk", flat=True)) == [earlier.pk]
    assert MoneyBalance.objects.get(billing_account=account).amount == Decimal("5.0000")
