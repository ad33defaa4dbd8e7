"""Races on PostgreSQL: many threads at once, then count what happened."""

import pytest

from catalog.errors import CatalogError
from catalog.models import Channel, FulfilmentStep, ProductOrder, Voucher
from catalog.services import cart_item_add, cart_voucher_apply, order_place
from catalog.tasks import fulfilment_step_run
from charging.models import Bucket, LedgerEntry
from portal.models import Line
from tests.catalog.factories import cart_for, promotion, shop, voucher
from tests.concurrency import run_together
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
