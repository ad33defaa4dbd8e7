"""An enterprise manager and a sub-manager use the cost-centre pages in headless Chromium."""

import pytest
from playwright.sync_api import expect

from charging.models import NodeLimit
from charging.selectors import node_snapshots
from portal.demo.data import mediation_key
from tests.browser.test_live_dashboard import browser, post_usage  # noqa: F401  (the fixture)
from tests.charging.trees import MB
from tests.enterprise.companies import acme
from tests.livetools import asgi_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/enterprise/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("secret-pass")
    page.get_by_role("button", name="Log in").click()


def test_the_manager_opens_the_tree_and_a_node_and_changes_its_limit(browser):  # noqa: F811
    company = acme(lines=3)
    team = company.tree.team

    with asgi_server() as base_url:
        page = browser.new_page()
        log_in(page, base_url, "acme-manager")
        expect(page.get_by_role("heading", name="Cost centres")).to_be_visible()
        expect(page.get_by_role("link", name="North")).to_have_count(0)

        page.get_by_role("button", name="Show what is below Sales").click()
        page.get_by_role("link", name="North").click()

        expect(page.locator("h1")).to_contain_text("North")
        expect(page.locator(".breadcrumbs")).to_have_text("All › Acme › Sales › North")
        form = page.locator("#limit-form")
        form.get_by_label("Unit").select_option("bytes")
        form.get_by_label("New limit per month").fill("120")
        form.get_by_label("Why").fill("New starters")
        form.get_by_role("button", name="Set limit").click()

        expect(page.locator(".messages")).to_have_text("Limit changed.")
        limit = page.locator('#limits [data-limit-unit="bytes"]')
        expect(limit.locator(".limit")).to_have_text("120.0 MB")
        expect(limit.locator(".remaining")).to_have_text("120.0 MB")
        assert NodeLimit.objects.get(node=team, unit="bytes").limit == 120 * MB

        page.get_by_role("link", name="Change history").click()
        expect(page.locator(".history li").first).to_contain_text("Data limit none → 120.0 MB")


def test_a_node_changed_message_redraws_the_nodes_limits_without_a_reload(browser):  # noqa: F811
    company = acme()
    sales = company.tree.division

    with asgi_server() as base_url:
        page = browser.new_page()
        log_in(page, base_url, "acme-manager")
        page.goto(f"{base_url}/enterprise/nodes/{sales.pk}/")
        limit = page.locator('#limits [data-limit-unit="bytes"]')
        expect(limit.locator(".used")).to_have_text("0.0 MB")
        page.evaluate("window.loadedOnce = true")

        NodeLimit.objects.filter(pk=company.sales_limit.pk).update(used=100 * MB, reserved=25 * MB)
        message = {"type": "node.changed", "node": sales.pk, "seq": 1, **node_snapshots(node_ids=[sales.pk])[sales.pk]}
        page.evaluate("m => document.dispatchEvent(new CustomEvent('live:message', {detail: m}))", message)

        expect(limit.locator(".used")).to_have_text("100.0 MB")
        expect(limit.locator(".reserved")).to_have_text("25.0 MB")
        expect(limit.locator(".remaining")).to_have_text("175.0 MB")
        assert page.evaluate("window.loadedOnce") is True


def test_a_charge_on_a_line_below_moves_the_nodes_limits_and_pools_within_a_second(browser):  # noqa: F811
    company = acme()
    sales, line = company.tree.division, company.tree.lines[0]
    key = mediation_key()

    with asgi_server() as base_url:
        page = browser.new_page()
        log_in(page, base_url, "acme-manager")
        page.goto(f"{base_url}/enterprise/nodes/{sales.pk}/")
        limit = page.locator('#limits [data-limit-unit="bytes"]')
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(limit.locator(".used")).to_have_text("0.0 MB")
        page.evaluate("window.loadedOnce = true")

        record = {"external_id": "e-1", "msisdn": line.msisdn, "service": "data", "quantity": 40 * MB}
        assert post_usage(base_url, key, record) == 201

        expect(limit.locator(".used")).to_have_text("40.0 MB", timeout=1000)
        expect(limit.locator(".remaining")).to_have_text("260.0 MB")
        assert page.evaluate("window.loadedOnce") is True

        page.goto(f"{base_url}/enterprise/nodes/{company.tree.root.pk}/")
        pool = page.locator(f'[data-pool-id="{company.tree.pool.pk}"] .remaining')
        expect(pool).to_have_text("960.0 MB")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        record = {"external_id": "e-2", "msisdn": line.msisdn, "service": "data", "quantity": 10 * MB}
        assert post_usage(base_url, key, record) == 201

        expect(pool).to_have_text("950.0 MB", timeout=1000)


def test_the_sub_manager_sees_only_sales_and_another_division_answers_404(browser):  # noqa: F811
    company = acme()

    with asgi_server() as base_url:
        page = browser.new_page()
        log_in(page, base_url, "acme-sales")

        expect(page.get_by_role("link", name="Sales")).to_be_visible()
        expect(page.get_by_role("link", name="Operations")).to_have_count(0)
        expect(page.get_by_role("link", name="North")).to_be_visible()

        response = page.goto(f"{base_url}/enterprise/nodes/{company.operations.pk}/")
        assert response.status == 404
        assert "Operations" not in page.content()
        response = page.goto(f"{base_url}/enterprise/nodes/{company.tree.root.pk}/children/")
        assert response.status == 404


def test_the_manager_moves_headroom_to_a_sibling_division(browser):  # noqa: F811
    company = acme()

    with asgi_server() as base_url:
        page = browser.new_page()
        log_in(page, base_url, "acme-manager")
        page.goto(f"{base_url}/enterprise/nodes/{company.tree.division.pk}/")
        form = page.locator("#move-form")
        form.get_by_label("Unit").select_option("bytes")
        form.get_by_label("How much").fill("50")
        form.get_by_label("To").select_option(label="Operations (Division)")
        form.get_by_label("Why").fill("Field season")
        form.get_by_role("button", name="Move").click()

        expect(page.locator(".messages")).to_have_text("Headroom moved to Operations.")
        expect(page.locator('#limits [data-limit-unit="bytes"] .limit')).to_have_text("250.0 MB")
        assert NodeLimit.objects.get(pk=company.operations_limit.pk).limit == 250 * MB
