"""Eligibility and compatibility rules, checked when an item goes into the cart and again at
checkout; on a refusal the cart stays as it was."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.errors import CatalogError
from catalog.models import CartItem, Channel, Product, ProductOffering, ProductOrder, Segment
from catalog.services import cart_item_add, cart_voucher_apply, order_place
from tests.catalog.factories import AddonFactory, PlanFactory, cart_for, promotion, shop, voucher
from tests.factories import BillingAccountFactory, LineFactory

pytestmark = pytest.mark.django_db


def refused(match, **kwargs):
    cart = kwargs["cart"]
    before = list(cart.items.values_list("pk", flat=True))
    with pytest.raises(CatalogError, match=match) as error:
        cart_item_add(**kwargs)
    assert list(cart.items.values_list("pk", flat=True)) == before
    return error.value


def test_an_enterprise_plan_is_refused_to_a_consumer():
    plan = PlanFactory(name="Business", segment=Segment.ENTERPRISE)
    cart, _ = cart_for()

    error = refused("sold to enterprise customers only", cart=cart, offering=plan)

    assert (error.code, error.field) == ("not_eligible", "offering")


def test_an_offering_outside_its_validity_window_or_channel_is_not_for_sale():
    expired = PlanFactory(valid_until=timezone.now() - timedelta(days=1))
    agents_only = PlanFactory(sold_on_web=False)
    cart, _ = cart_for()

    refused("not for sale", cart=cart, offering=expired)
    refused("not for sale", cart=cart, offering=agents_only)
    assert cart_item_add(cart=cart, offering=agents_only, channel=Channel.ASSISTED).offering == agents_only


def test_a_loyalty_offer_needs_a_plan_in_contract_near_its_end():
    current = PlanFactory(contract_months=24, early_upgrade_months=3)
    offer = PlanFactory(name="Loyalty", contract_state=ProductOffering.ContractState.CONTRACT_ENDING)
    line = LineFactory()
    now = timezone.now()
    product = Product.objects.create(
        customer=line.billing_account.customer,
        billing_account=line.billing_account,
        offering=current,
        line=line,
        status=Product.Status.ACTIVE,
        started_at=now - timedelta(days=100),
        contract_ends_at=now + timedelta(days=500),
    )
    cart, _ = cart_for(line.billing_account)

    refused("contract ends soon", cart=cart, offering=offer)
    Product.objects.filter(pk=product.pk).update(contract_ends_at=now + timedelta(days=40))
    assert cart_item_add(cart=cart, offering=offer).offering == offer


def test_an_addon_needs_a_plan_that_allows_it():
    s = shop()
    stranger = AddonFactory(name="Stranger pass")
    cart, _ = cart_for()
    plan_item = cart_item_add(cart=cart, offering=s["plan"])

    refused("bought for a plan", cart=cart, offering=s["addon"])
    refused("cannot be added to Unlimited 20", cart=cart, offering=stranger, parent=plan_item)
    assert cart_item_add(cart=cart, offering=s["addon"], parent=plan_item).parent == plan_item


def test_an_accessory_must_fit_the_handset_it_is_sold_with():
    s = shop()
    cart, _ = cart_for()
    handset = cart_item_add(cart=cart, offering=s["handset"])

    refused("does not fit Pixel 9", cart=cart, offering=s["charger"], parent=handset)


def test_a_voucher_with_a_total_limit_is_refused_once_used_up(django_capture_on_commit_callbacks):
    s = shop()
    promo = promotion("Ten off", [s["plan"]], [(3, "fixed", "10")], requires_voucher=True)
    code = voucher("TEN", promo, max_uses=1, once_per_customer=False)
    first, first_account = cart_for()
    cart_item_add(cart=first, offering=s["plan"])
    cart_voucher_apply(cart=first, code="TEN")
    second, second_account = cart_for()
    cart_item_add(cart=second, offering=s["plan"])
    cart_voucher_apply(cart=second, code="TEN")

    order = order_place(cart=first, placed_by=first_account.customer.user, channel=Channel.WEB)
    with pytest.raises(CatalogError, match="used up"):
        order_place(cart=second, placed_by=second_account.customer.user, channel=Channel.WEB)

    code.refresh_from_db()
    assert code.uses == 1
    assert order.monthly == Decimal("20.0000")
    assert ProductOrder.objects.count() == 1
    assert second.items.count() == 1


def test_a_voucher_needs_its_minimum_term():
    s = shop()
    promo = promotion("Long only", [s["other"]], [(3, "free", "0")], requires_voucher=True, min_contract_months=12)
    voucher("LONG", promo)
    cart, _ = cart_for()
    cart_item_add(cart=cart, offering=s["other"])

    with pytest.raises(CatalogError, match="at least 12 months"):
        cart_voucher_apply(cart=cart, code="LONG")

    cart.refresh_from_db()
    assert cart.voucher is None


def test_another_customers_line_cannot_take_an_addon():
    s = shop()
    cart, _ = cart_for()
    foreign = LineFactory(billing_account=BillingAccountFactory())

    refused("no such line", cart=cart, offering=s["addon"], line=foreign)
    assert CartItem.objects.count() == 0


def test_checkout_refuses_a_pairing_the_catalog_no_longer_allows():
    s = shop()
    cart, account = cart_for()
    handset = cart_item_add(cart=cart, offering=s["handset"])
    cart_item_add(cart=cart, offering=s["plan"], parent=handset)
    s["handset"].compatible_plans.remove(s["plan"])

    with pytest.raises(CatalogError, match="Unlimited 20 cannot be sold with Pixel 9"):
        order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    cart.refresh_from_db()
    assert cart.status == "open"
    assert ProductOrder.objects.count() == 0
