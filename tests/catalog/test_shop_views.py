from decimal import Decimal

import pytest

from catalog.models import Channel, ProductOffering, ShoppingCart
from catalog.services import cart_guided_add, cart_open, order_place
from tests.catalog.factories import (
    AccessoryFactory,
    HandsetFactory,
    PlanFactory,
    buyer_account,
    cart_for,
    promotion,
    shop,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def many_offerings(count: int) -> ProductOffering:
    """A handset with ``count`` plans and ``count`` accessories that fit it, and a promotion."""
    handset = HandsetFactory()
    plans = ProductOffering.objects.bulk_create(
        PlanFactory.build(code=f"p-{i}", name=f"Plan {i}", rate_plan=None) for i in range(count)
    )
    accessories = ProductOffering.objects.bulk_create(
        AccessoryFactory.build(code=f"a-{i}", name=f"Accessory {i}") for i in range(count)
    )
    handset.compatible_plans.set(plans)
    ProductOffering.fits_handsets.through.objects.bulk_create(
        ProductOffering.fits_handsets.through(from_productoffering=a, to_productoffering=handset) for a in accessories
    )
    promotion("Launch", plans[:5], [(6, "free", "0")])
    return handset


@pytest.mark.parametrize("count", [10, 2000])
def test_browse_and_guided_selling_make_a_bounded_number_of_queries(client, count, django_assert_max_num_queries):
    handset = many_offerings(count)
    plan = ProductOffering.objects.get(code="p-0")
    client.force_login(buyer_account().customer.user)

    # session, user, customer; a page of offerings with their allowances, components, promotions
    # and phases; the customer's lines for add-ons. Guided selling: the same per list it shows.
    with django_assert_max_num_queries(10):
        assert client.get("/shop/").status_code == 200
    with django_assert_max_num_queries(10):
        assert client.get("/shop/", {"kind": "plan", "q": "Plan 1"}).status_code == 200
    with django_assert_max_num_queries(7):
        assert client.get("/shop/guided/").status_code == 200
    with django_assert_max_num_queries(16):
        page = client.get("/shop/guided/", {"handset": handset.pk, "plan": plan.pk})
    assert page.status_code == 200
    assert page.context["summary"].monthly == Decimal("0.0000")  # six months free
    assert len(page.context["plans"]) == count


def test_guided_selling_offers_only_the_plans_and_accessories_that_fit_the_handset(client):
    s = shop()
    client.force_login(buyer_account().customer.user)

    page = client.get("/shop/guided/", {"handset": s["handset"].pk, "plan": s["plan"].pk, "accessory": s["case"].pk})

    assert [p.code for p in page.context["plans"]] == ["basic-5", "unlimited-20"]
    assert [a.code for a in page.context["accessories"]] == ["pixel-9-case"]
    summary = page.context["summary"]
    assert (summary.today, summary.monthly, summary.term_total) == (
        Decimal("218.9500"),
        Decimal("30.0000"),
        Decimal("938.9500"),
    )


def test_guided_selling_puts_the_choice_in_the_cart_and_checkout_places_the_order(
    client, django_capture_on_commit_callbacks
):
    s = shop()
    account = buyer_account()
    client.force_login(account.customer.user)

    response = client.post(
        "/shop/guided/", {"handset": s["handset"].pk, "plan": s["small"].pk, "accessory": [s["case"].pk]}
    )
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/shop/cart/checkout/", {"billing_account": account.pk})

    order = account.customer.orders.get()
    assert response["Location"] == f"/shop/orders/{order.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Completed" in page
    assert page.count('class="step step-done"') == 4


def test_an_order_placed_by_an_agent_appears_in_the_customers_web_view(client, django_capture_on_commit_callbacks):
    s = shop()
    account = buyer_account()
    agent = UserFactory(is_staff=True)
    cart = cart_open(customer=account.customer, channel=Channel.ASSISTED, actor=agent)
    cart_guided_add(cart=cart, handset=s["handset"], plan=s["plan"], accessories=[], channel=Channel.ASSISTED)
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=agent, channel=Channel.ASSISTED)
    client.force_login(account.customer.user)

    listing = client.get("/shop/orders/").content.decode()
    detail = client.get(f"/shop/orders/{order.pk}/").content.decode()

    assert f"Order {order.pk}" in listing
    assert "our call centre" in listing
    assert "by our call centre for you" in detail


def test_a_cart_started_on_the_web_is_finished_by_an_agent_in_the_admin(client, django_capture_on_commit_callbacks):
    s = shop()
    account = buyer_account()
    client.force_login(account.customer.user)
    client.post("/shop/guided/", {"handset": s["handset"].pk, "plan": s["plan"].pk})
    cart = ShoppingCart.objects.get(customer=account.customer)
    agent = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(agent)

    asked = client.post(
        "/admin/catalog/shoppingcart/", {"action": "place_order", "_selected_action": [cart.pk]}
    ).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/catalog/shoppingcart/",
            {"action": "place_order", "_selected_action": [cart.pk], "reason": "customer called", "confirm": "1"},
        )

    assert "Reason" in asked
    order = account.customer.orders.get()
    assert (order.channel, order.placed_by, order.state) == ("assisted", agent, "completed")
    assert order.cart == cart
    assert order.events.filter(actor=agent, text="Agent's note: customer called").exists()
    client.force_login(account.customer.user)
    assert f"Order {order.pk}" in client.get("/shop/orders/").content.decode()


def test_an_agent_cancels_an_order_in_the_admin_with_a_reason(client):
    s = shop()
    cart, account = cart_for()
    cart_guided_add(cart=cart, handset=s["handset"], plan=None, accessories=[])
    order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    agent = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(agent)

    client.post(
        "/admin/catalog/productorder/",
        {"action": "cancel", "_selected_action": [order.pk], "reason": "duplicate order", "confirm": "1"},
    )

    order.refresh_from_db()
    assert (order.state, order.state_reason) == ("cancelled", "duplicate order")
    assert client.get(f"/admin/catalog/productorder/{order.pk}/change/").status_code == 200


def test_another_customers_order_page_answers_404(client, django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    cart_guided_add(cart=cart, handset=s["handset"], plan=None, accessories=[])
    order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    client.force_login(buyer_account().customer.user)

    assert client.get(f"/shop/orders/{order.pk}/").status_code == 404
    assert client.get(f"/shop/orders/{order.pk}/timeline/").status_code == 404


def test_an_agent_starts_a_cart_in_the_admin_and_adds_through_the_same_rules(client):
    s = shop()
    account = buyer_account()
    agent = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(agent)

    response = client.post("/admin/catalog/shoppingcart/start/", {"customer": account.customer.pk})
    cart = ShoppingCart.objects.get(customer=account.customer)
    assert response["Location"] == f"/admin/catalog/shoppingcart/{cart.pk}/change/"
    client.post(f"/admin/catalog/shoppingcart/{cart.pk}/add-item/", {"offering": s["handset"].pk})
    handset_item = cart.items.get()
    refused = client.post(
        f"/admin/catalog/shoppingcart/{cart.pk}/add-item/", {"offering": s["other"].pk, "parent": handset_item.pk}
    )

    assert (cart.started_channel, cart.started_by) == ("assisted", agent)
    assert "Sim only 1 cannot be sold with Pixel 9" in refused.content.decode()
    assert cart.items.count() == 1
    client.force_login(account.customer.user)
    assert "Pixel 9" in client.get("/shop/cart/").content.decode()


def test_an_agent_quotes_and_confirms_a_plan_change_in_the_admin(client, django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    from catalog.services import cart_item_add

    cart_item_add(cart=cart, offering=s["other"])
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    product = order.items.get().product
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/catalog/product/{product.pk}/change-plan/"

    quote = client.post(url, {"offering": s["plan"].pk, "reason": "wants more data"}).content.decode()
    client.post(url, {"offering": s["plan"].pk, "reason": "wants more data", "confirm": "1"})

    assert "Early termination fee" in quote
    product.refresh_from_db()
    assert product.status == "terminated"
    assert account.customer.products.get(status="active").offering == s["plan"]


def test_a_customer_changes_plan_online_from_the_quotes(client, django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    from catalog.services import cart_item_add

    cart_item_add(cart=cart, offering=s["other"])
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    product = order.items.get().product
    client.force_login(account.customer.user)

    page = client.get(f"/shop/products/{product.pk}/change-plan/")
    response = client.post(f"/shop/products/{product.pk}/change-plan/", {"offering": s["small"].pk})

    assert [plan.code for plan, _ in page.context["quotes"]] == ["basic-5", "unlimited-20"]
    assert response["Location"] == "/shop/products/"
    assert account.customer.products.get(status="active").offering == s["small"]
    client.force_login(buyer_account().customer.user)
    assert client.get(f"/shop/products/{product.pk}/change-plan/").status_code == 404


def test_an_agent_suspends_and_resumes_a_product_with_a_reason(client, django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    from catalog.services import cart_item_add

    cart_item_add(cart=cart, offering=s["other"])
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    product = order.items.get().product
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    asked = client.post("/admin/catalog/product/", {"action": "suspend", "_selected_action": [product.pk]})
    product.refresh_from_db()
    assert "Reason" in asked.content.decode()
    assert product.status == "active"

    client.post(
        "/admin/catalog/product/",
        {"action": "suspend", "_selected_action": [product.pk], "reason": "lost phone", "confirm": "1"},
    )
    product.refresh_from_db()
    assert product.status == "suspended"
    assert list(product.events.values_list("text", flat=True)) == ["Suspended: lost phone"]
