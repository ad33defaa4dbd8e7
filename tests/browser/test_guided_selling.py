"""A consumer walks guided selling in headless Chromium to a placed order and watches its
timeline advance to completed while the fulfilment steps run."""

import pytest
from playwright.sync_api import expect

from catalog.adapters import SimulatedPartner, partners
from catalog.models import ProductOrder
from catalog.tasks import fulfilment_step_run
from tests.browser.test_live_dashboard import browser  # noqa: F401  (the fixture)
from tests.catalog.factories import buyer_account, shop
from tests.factories import UserFactory
from tests.livetools import asgi_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued_steps(monkeypatch):
    """Step tasks wait in a queue the test works through, as a worker would, one at a time."""
    partners.reset()
    partners.use(**{name: SimulatedPartner(name) for name in ("network", "distributor", "drop_ship", "content")})
    queue: list[int] = []
    monkeypatch.setattr(fulfilment_step_run, "delay", queue.append)
    yield queue
    partners.reset()


def test_guided_selling_to_an_order_whose_timeline_advances_to_completed(browser, queued_steps):  # noqa: F811
    s = shop()
    user = UserFactory(username="dana")
    buyer_account(customer__user=user)

    with asgi_server() as base_url:
        page = browser.new_page()
        page.goto(f"{base_url}/accounts/login/?next=/shop/guided/")
        page.get_by_label("Username").fill("dana")
        page.get_by_label("Password").fill("secret-pass")
        page.get_by_role("button", name="Log in").click()

        page.get_by_role("link", name="Pixel 9").click()
        expect(page.locator('[data-total="today"]')).to_have_text("€199.00")
        page.get_by_label("Unlimited 20").check()
        expect(page.locator('[data-total="monthly"]')).to_have_text("€30.00")
        page.get_by_label("Pixel 9 case").check()
        expect(page.locator('[data-total="today"]')).to_have_text("€218.95")
        expect(page.locator('[data-total="term"]')).to_have_text("€938.95")
        page.get_by_role("button", name="Add to cart").click()

        expect(page.get_by_role("heading", name="Your cart")).to_be_visible()
        page.get_by_role("button", name="Place order").click()

        expect(page.locator(".order-state")).to_have_text("Acknowledged")
        order = ProductOrder.objects.get(customer__user=user)
        done = page.locator(".step-done")
        expect(done).to_have_count(0)

        finished = 0
        while queued_steps:
            fulfilment_step_run.apply(args=(queued_steps.pop(0),))
            finished += 1
            expect(done).to_have_count(finished, timeout=5000)

        expect(page.locator(".order-state")).to_have_text("Completed", timeout=5000)
        assert finished == 4
        order.refresh_from_db()
        assert order.state == ProductOrder.State.COMPLETED
        assert s["handset"].name in page.locator("#timeline").inner_text()
