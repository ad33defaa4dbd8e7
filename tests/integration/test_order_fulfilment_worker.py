"""A real Celery worker over Redis runs an order's fulfilment steps, one task per step."""

import time

import pytest

from catalog.models import Channel, ProductOrder
from catalog.services import cart_guided_add, order_place
from charging.models import Bucket
from tests.catalog.factories import cart_for, shop
from tests.integration.test_celery_worker import worker_queue  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_fulfils_an_order_step_by_step(worker_queue):  # noqa: F811
    s = shop()
    cart, account = cart_for()
    cart_guided_add(cart=cart, handset=s["handset"], plan=s["plan"], accessories=[s["case"]])

    order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    deadline = time.monotonic() + 60  # the worker may need a moment to boot; bounded
    while order.state in ProductOrder.OPEN_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        order.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    assert set(order.steps.values_list("state", flat=True)) == {"done"}
    assert Bucket.objects.filter(line__billing_account=account).count() == 1
