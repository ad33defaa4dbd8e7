"""A voucher's segment and offering conditions, checked when it is applied to a cart; on a
refusal the cart, its price and the voucher's use count stay as they were."""

from decimal import Decimal

import pytest

from catalog.errors import CatalogError
from catalog.models import Segment
from catalog.selectors import cart_summary
from catalog.services import cart_item_add, cart_voucher_apply
from portal.models import Customer
from tests.catalog.factories import cart_for, promotion, shop, voucher
from tests.factories import BillingAccountFactory

pytestmark = pytest.mark.django_db


def prices(cart):
    summary = cart_summary(cart=cart)
    return summary.today, summary.monthly, summary.term_total


def assert_refused(cart, code, message):
    before = prices(cart)
    uses = code.uses
    with pytest.raises(CatalogError) as error:
        cart_voucher_apply(cart=cart, code=code.code)
    assert (error.value.message, error.value.code, error.value.field) == (message, "voucher_refused", "voucher")
    cart.refresh_from_db()
    code.refresh_from_db()
    assert cart.voucher is None
    assert code.uses == uses
    assert prices(cart) == before


def test_an_enterprise_voucher_is_refused_to_a_consumer_and_accepted_for_a_company():
    s = shop()
    promo = promotion("Business half", [s["plan"]], [(3, "percent", "50")], requires_voucher=True)
    promo.segment = Segment.ENTERPRISE
    promo.save(update_fields=["segment"])
    code = voucher("BIZ50", promo)
    consumer_cart, _ = cart_for()
    cart_item_add(cart=consumer_cart, offering=s["plan"])

    assert_refused(consumer_cart, code, "this voucher is for enterprise customers")
    assert prices(consumer_cart) == (Decimal("0.0000"), Decimal("30.0000"), Decimal("720.0000"))

    company_cart, _ = cart_for(BillingAccountFactory(customer__kind=Customer.Kind.COMPANY))
    cart_item_add(cart=company_cart, offering=s["plan"])
    assert cart_voucher_apply(cart=company_cart, code="biz50").voucher == code
    company_cart.refresh_from_db()
    assert company_cart.voucher == code
    assert prices(company_cart) == (Decimal("0.0000"), Decimal("15.0000"), Decimal("675.0000"))
    code.refresh_from_db()
    assert code.uses == 0  # counted when an order is placed, not when applied


def test_a_voucher_for_certain_offerings_is_refused_without_them_and_applies_with_them():
    s = shop()
    promo = promotion("Pass free", [s["addon"], s["small"]], [(2, "free", "0")], requires_voucher=True)
    code = voucher("PASS", promo)
    cart, _ = cart_for()
    cart_item_add(cart=cart, offering=s["plan"])
    assert prices(cart) == (Decimal("0.0000"), Decimal("30.0000"), Decimal("720.0000"))

    assert_refused(cart, code, "this voucher applies to nothing in the cart")

    plan_item = cart.items.get()
    cart_item_add(cart=cart, offering=s["addon"], parent=plan_item)
    assert prices(cart) == (Decimal("0.0000"), Decimal("35.0000"), Decimal("840.0000"))
    cart_voucher_apply(cart=cart, code="PASS")

    cart.refresh_from_db()
    assert cart.voucher == code
    summary = cart_summary(cart=cart)
    assert [(item.offering.code, item.promotion) for item in summary.items] == [
        ("unlimited-20", None),
        ("data-pass-5", promo),
    ]
    assert (summary.monthly, summary.term_total) == (Decimal("30.0000"), Decimal("830.0000"))
