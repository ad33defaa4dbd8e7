import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from catalog.models import Channel, Product, ProductOffering, ProductOrder, ShoppingCart
from catalog.services import cart_guided_add, cart_open, order_place
from tests.catalog.factories import buyer_account
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_catalog_page_of_the_agent_workspace_opens(client, django_capture_on_commit_callbacks, capsys):
    call_command("demo_load")
    account = buyer_account()
    cart = cart_open(customer=account.customer)
    handset = ProductOffering.objects.get(code="pixel-9")
    cart_guided_add(cart=cart, handset=handset, plan=handset.compatible_plans.first(), accessories=[])
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    cart_open(customer=account.customer)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    product = Product.objects.filter(offering__kind="plan").first()

    pages = [
        "/admin/catalog/productoffering/",
        f"/admin/catalog/productoffering/{handset.pk}/change/",
        "/admin/catalog/promotion/",
        "/admin/catalog/voucher/",
        "/admin/catalog/shoppingcart/",
        f"/admin/catalog/shoppingcart/{ShoppingCart.objects.filter(status='open').first().pk}/change/",
        "/admin/catalog/shoppingcart/start/",
        "/admin/catalog/productorder/",
        f"/admin/catalog/productorder/{order.pk}/change/",
        "/admin/catalog/product/",
        f"/admin/catalog/product/{product.pk}/change/",
        f"/admin/catalog/product/{product.pk}/change-plan/",
    ]
    statuses = {page: client.get(page).status_code for page in pages}

    assert statuses == dict.fromkeys(pages, 200)
    assert ProductOrder.objects.get(pk=order.pk).state == "completed"
    agent = User.objects.get(username="agent")  # the demo's agent group may work on orders
    assert agent.has_perm("catalog.change_productorder")
    assert agent.has_perm("catalog.view_product")
