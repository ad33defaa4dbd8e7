"""Checkout refuses an order whose one-off charges the account cannot cover, and changes nothing."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from catalog.errors import CatalogError
from catalog.models import Channel, ProductOrder, ShoppingCart, Voucher
from catalog.services import cart_item_add, cart_voucher_apply, order_place
from charging.models import LedgerEntry, MoneyBalance
from charging.services import money_post
from portal.models import BillingAccount
from tests.catalog.factories import HandsetFactory, cart_for, promotion, voucher
from tests.factories import BillingAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def prepaid(funds: str) -> BillingAccount:
    account = BillingAccountFactory(kind=BillingAccount.Kind.PREPAID)
    money_post(billing_account=account, amount=Decimal(funds), kind=LedgerEntry.Kind.TOPUP, reason="Top-up")
    return account


def postpaid(limit: str) -> BillingAccount:
    return BillingAccountFactory(kind=BillingAccount.Kind.POSTPAID, credit_limit=Decimal(limit))


def cart_of(account: BillingAccount, *prices: str) -> ShoppingCart:
    cart, _ = cart_for(account)
    for price in prices:
        cart_item_add(cart=cart, offering=HandsetFactory(one_off_price=Decimal(price)))
    return cart


def place(cart: ShoppingCart) -> ProductOrder:
    return order_place(cart=cart, placed_by=cart.customer.user, channel=Channel.WEB)


def money_of(account: BillingAccount) -> Decimal:
    return MoneyBalance.objects.get(billing_account=account).amount


def test_a_prepaid_account_cannot_order_a_phone_past_its_funds_and_nothing_changes():
    account = prepaid("20")
    cart = cart_of(account, "149")

    with pytest.raises(CatalogError) as refused:
        place(cart)

    assert (refused.value.code, refused.value.field) == ("insufficient_funds", "billing_account")
    assert refused.value.message == f"This order costs €149.00 today; account {account.number} can cover €20.00."
    cart.refresh_from_db()
    assert cart.status == ShoppingCart.Status.OPEN
    assert not ProductOrder.objects.exists()
    assert money_of(account) == Decimal("20.0000")
    assert LedgerEntry.objects.filter(billing_account=account).count() == 1  # the top-up


def test_a_prepaid_account_orders_what_its_funds_cover_exactly():
    account = prepaid("149")

    order = place(cart_of(account, "149"))

    assert order.due_today == Decimal("149.0000")


def test_a_postpaid_account_cannot_order_past_its_credit_limit():
    account = postpaid("100")

    with pytest.raises(CatalogError, match="costs €897.00 today; account .* can cover €100.00"):
        place(cart_of(account, "299", "299", "299"))

    assert not ProductOrder.objects.exists()


def test_what_a_postpaid_account_already_owes_counts_against_its_limit():
    account = postpaid("100")
    money_post(billing_account=account, amount=Decimal("-90"), kind=LedgerEntry.Kind.USAGE, reason="Calls")

    with pytest.raises(CatalogError, match="costs €19.95 today; account .* can cover €10.00"):
        place(cart_of(account, "19.95"))


def test_orders_not_yet_charged_count_against_what_the_account_can_cover():
    account = postpaid("500")
    first = place(cart_of(account, "299"))  # its phone is charged once it ships

    with pytest.raises(CatalogError, match="can cover €201.00"):
        place(cart_of(account, "299"))

    assert list(ProductOrder.objects.values_list("pk", flat=True)) == [first.pk]
    assert money_of(account) == Decimal("0.0000")


def test_a_cancelled_order_no_longer_holds_the_accounts_money():
    from catalog.services import order_cancel

    account = postpaid("500")
    first = place(cart_of(account, "299"))
    order_cancel(order=first, reason="changed my mind", actor=account.customer.user)

    assert place(cart_of(account, "299")).state == ProductOrder.State.ACKNOWLEDGED


def test_money_held_by_open_sessions_counts_against_what_the_account_can_cover():
    account = prepaid("100")
    MoneyBalance.objects.filter(billing_account=account).update(reserved=Decimal("60"))

    with pytest.raises(CatalogError, match="can cover €40.00"):
        place(cart_of(account, "49"))


def test_an_order_that_costs_nothing_today_is_placed_on_an_empty_account():
    from tests.catalog.factories import PlanFactory

    account = BillingAccountFactory(kind=BillingAccount.Kind.PREPAID)
    cart, _ = cart_for(account)
    cart_item_add(cart=cart, offering=PlanFactory(contract_months=0))

    assert place(cart).due_today == Decimal("0.0000")


def test_a_refused_checkout_leaves_the_vouchers_uses_as_they_were():
    account = prepaid("20")
    cart = cart_of(account, "149")
    code = voucher("PHONE", promotion("Phone", list(cart.items.values_list("offering", flat=True)), []), max_uses=5)
    cart_voucher_apply(cart=cart, code="PHONE")

    with pytest.raises(CatalogError):
        place(cart)

    assert Voucher.objects.get(pk=code.pk).uses == 0


def test_the_shop_shows_why_a_checkout_was_refused(client):
    account = prepaid("20")
    cart_of(account, "149")
    client.force_login(account.customer.user)

    response = client.post("/shop/cart/checkout/", {"billing_account": account.pk}, follow=True)

    assert f"This order costs €149.00 today; account {account.number} can cover €20.00." in response.content.decode()
    assert not ProductOrder.objects.exists()


def test_the_api_refuses_an_order_the_account_cannot_cover_with_its_code():
    account = postpaid("100")
    cart = cart_of(account, "299")
    api = APIClient()
    api.force_authenticate(account.customer.user)

    response = api.post("/api/productOrder/", {"cart": cart.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "insufficient_funds"
    assert not ProductOrder.objects.exists()


def test_an_agent_placing_an_order_the_account_cannot_cover_is_told_why(client):
    account = prepaid("20")
    cart = cart_of(account, "149")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(
        "/admin/catalog/shoppingcart/",
        {"action": "place_order", "_selected_action": [cart.pk], "reason": "customer called", "confirm": "1"},
        follow=True,
    )

    assert "can cover €20.00" in response.content.decode()
    assert not ProductOrder.objects.exists()
