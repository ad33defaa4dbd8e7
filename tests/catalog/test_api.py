from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import CartItem, ProductOrder
from tests.catalog.factories import buyer_account, cart_for, promotion, shop, voucher

pytestmark = pytest.mark.django_db


def client_for(account):
    client = APIClient()
    client.force_authenticate(account.customer.user)
    return client


def test_offerings_filter_by_kind_and_by_the_handset_they_fit():
    s = shop()
    client = client_for(buyer_account())

    plans = client.get("/api/productOffering/", {"kind": "plan", "compatibleWith": s["handset"].pk}).json()
    accessories = client.get("/api/productOffering/", {"fits": s["handset"].pk}).json()

    assert [o["code"] for o in plans["results"]] == ["basic-5", "unlimited-20"]
    assert [o["code"] for o in accessories["results"]] == ["pixel-9-case"]


def test_a_cart_and_an_order_through_the_api_with_a_voucher(django_capture_on_commit_callbacks):
    s = shop()
    promo = promotion("Half price", [s["plan"]], [(3, "percent", "50")], requires_voucher=True)
    voucher("HALF", promo, max_uses=10)
    account = buyer_account()
    client = client_for(account)

    cart = client.post("/api/shoppingCart/").json()
    handset = client.post(f"/api/shoppingCart/{cart['id']}/cartItem/", {"offering": s["handset"].pk}).json()
    item_id = handset["items"][0]["id"]
    client.post(f"/api/shoppingCart/{cart['id']}/cartItem/", {"offering": s["plan"].pk, "parent": item_id})
    body = client.post(f"/api/shoppingCart/{cart['id']}/voucher/", {"code": "half"}).json()

    assert (body["today"], body["monthly"], body["term_months"], body["term_total"]) == (
        "199.0000",
        "15.0000",
        24,
        "874.0000",  # 199 + 3 x 15 + 21 x 30
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/productOrder/", {"cart": cart["id"]})

    assert response.status_code == 201
    order = client.get(f"/api/productOrder/{response.json()['id']}/").json()
    assert order["state"] == "completed"
    assert order["channel"] == "web"
    assert [i["promotion"] for i in order["items"]] == ["", "Half price"]
    web = Client()
    web.force_login(account.customer.user)
    assert "Half price: 50% off for 3 months" in web.get(f"/shop/orders/{order['id']}/").content.decode()
    products = client.get("/api/product/").json()["results"]
    assert sorted(p["status"] for p in products) == ["active", "active"]


def test_a_refused_item_answers_400_with_the_field_and_the_reason():
    s = shop()
    account = buyer_account()
    client = client_for(account)
    cart = client.post("/api/shoppingCart/").json()
    handset = client.post(f"/api/shoppingCart/{cart['id']}/cartItem/", {"offering": s["handset"].pk}).json()

    response = client.post(
        f"/api/shoppingCart/{cart['id']}/cartItem/", {"offering": s["other"].pk, "parent": handset["items"][0]["id"]}
    )

    assert response.status_code == 400
    assert response.json() == {
        "@type": "Error",
        "code": "not_compatible",
        "reason": "Sim only 1 cannot be sold with Pixel 9",
        "message": "Sim only 1 cannot be sold with Pixel 9",
        "status": "400",
        "field": "parent",
    }
    assert CartItem.objects.count() == 1


def test_missing_input_answers_400_naming_the_field():
    client = client_for(buyer_account())

    response = client.post("/api/productOrder/", {})

    assert response.status_code == 400
    assert response.json() == {
        "@type": "Error",
        "code": "invalid",
        "reason": "This field is required.",
        "message": "cart: This field is required.",
        "status": "400",
        "field": "cart",
        "errors": {"cart": ["This field is required."]},
    }


def test_another_customers_cart_order_and_product_answer_404(django_capture_on_commit_callbacks):
    s = shop()
    cart, theirs = cart_for()
    from catalog.services import cart_item_add, order_place

    cart_item_add(cart=cart, offering=s["other"])
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=theirs.customer.user, channel="web")
    product = order.items.get().product
    client = client_for(buyer_account())

    assert client.get(f"/api/shoppingCart/{cart.pk}/").status_code == 404
    assert client.get(f"/api/productOrder/{order.pk}/").status_code == 404
    assert client.post(f"/api/productOrder/{order.pk}/cancel/", {"reason": "x"}).status_code == 404
    assert client.get(f"/api/product/{product.pk}/").status_code == 404
    assert client.get("/api/productOrder/").json() == []
    assert ProductOrder.objects.get(pk=order.pk).state == "completed"


def test_a_voucher_used_once_is_refused_on_the_next_order(django_capture_on_commit_callbacks):
    s = shop()
    promo = promotion("Welcome", [s["other"]], [(1, "free", "0")], requires_voucher=True)
    code = voucher("WELCOME", promo, once_per_customer=True)
    account = buyer_account()
    client = client_for(account)
    cart = client.post("/api/shoppingCart/").json()
    client.post(f"/api/shoppingCart/{cart['id']}/cartItem/", {"offering": s["other"].pk})
    client.post(f"/api/shoppingCart/{cart['id']}/voucher/", {"code": "WELCOME"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/productOrder/", {"cart": cart["id"]})

    second = client.post("/api/shoppingCart/").json()
    client.post(f"/api/shoppingCart/{second['id']}/cartItem/", {"offering": s["other"].pk})
    response = client.post(f"/api/shoppingCart/{second['id']}/voucher/", {"code": "WELCOME"})

    assert response.status_code == 400
    assert (response.json()["field"], response.json()["reason"]) == (
        "voucher",
        "this voucher has been used on an earlier order",
    )
    code.refresh_from_db()
    assert code.uses == 1
    assert Decimal(second["monthly"]) == Decimal(0)
