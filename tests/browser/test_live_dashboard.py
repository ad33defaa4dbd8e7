"""A consumer watches the dashboard in headless Chromium while usage is charged."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from charging.models import Bucket
from portal.demo.data import mediation_key
from tests.factories import MB, LineFactory, UserFactory, data_bucket
from tests.livetools import asgi_server, data_charged, free_port
from tests.services import chromium_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


@pytest.fixture
def browser(monkeypatch):
    executable = chromium_path()
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, which Django allows once told so.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def post_usage(base_url: str, key: str, record: dict) -> int:
    request = urllib.request.Request(
        f"{base_url}/api/usage/",
        data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("secret-pass")
    page.get_by_role("button", name="Log in").click()


def test_dashboard_shows_the_new_remaining_amount_without_a_reload(browser):
    user = UserFactory(username="carla")
    line = LineFactory(billing_account__customer__user=user, msisdn="31630000001")
    bucket = data_bucket(line, 100 * MB)
    key = mediation_key()

    with asgi_server() as base_url:
        page = browser.new_page()
        log_in(page, base_url, "carla")
        remaining = page.locator(f'[data-bucket-id="{bucket.pk}"] .remaining')
        expect(remaining).to_have_text("100.0 MB")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        page.evaluate("window.loadedOnce = true")

        status = post_usage(
            base_url, key, {"external_id": "b-1", "msisdn": line.msisdn, "service": "data", "quantity": 25 * MB}
        )

        assert status == 201
        expect(remaining).to_have_text("75.0 MB", timeout=1000)
        assert page.evaluate("window.loadedOnce") is True  # the same page, not a reload
        assert Bucket.objects.get(pk=bucket.pk).remaining == 75 * MB
        expect(page.locator("#live-notices .notice")).to_have_count(0)

        second = {"external_id": "b-2", "msisdn": line.msisdn, "service": "data", "quantity": 30 * MB}
        post_usage(base_url, key, second)

        expect(remaining).to_have_text("45.0 MB", timeout=1000)
        expect(page.locator("#live-notices .notice")).to_have_text(
            ["Your Data allowance is 50% used: 55.0 MB of 100.0 MB"], timeout=1000
        )


def test_a_page_that_lost_its_socket_says_so_and_catches_up_when_it_reconnects(browser):
    user = UserFactory(username="dora")
    line = LineFactory(billing_account__customer__user=user, msisdn="31630000002")
    bucket = data_bucket(line, 100 * MB)
    key = mediation_key()
    port = free_port()
    page = browser.new_page()
    status = page.locator("#live-status")
    remaining = page.locator(f'[data-bucket-id="{bucket.pk}"] .remaining')

    with asgi_server(port) as base_url:
        log_in(page, base_url, "dora")
        expect(status).to_have_attribute("data-state", "live")
        post_usage(base_url, key, {"external_id": "c-1", "msisdn": line.msisdn, "service": "data", "quantity": 10 * MB})
        expect(remaining).to_have_text("90.0 MB", timeout=1000)
        page.evaluate("window.loadedOnce = true")
    # The server went away mid-stream: the page says it is not live, and misses this charge.
    expect(status).to_have_attribute("data-state", "offline")
    data_charged(line, "c-2", 25 * MB)

    with asgi_server(port):
        expect(status).to_have_attribute("data-state", "live", timeout=10_000)
        expect(remaining).to_have_text("65.0 MB")
        assert page.evaluate("window.loadedOnce") is True  # caught up without a reload
