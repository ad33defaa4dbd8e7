"""The ASGI server keeps no database connection past a request (PostgreSQL)."""

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.factories import LineFactory
from tests.livetools import asgi_server_process
from tests.services import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)


SERVER = "portal-test-server"  # the server's sessions call themselves this (libpq's PGAPPNAME)


def server_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [SERVER],
        )
        return cursor.fetchone()[0]


def test_many_requests_leave_the_server_holding_no_database_connection():
    require_postgres()
    line = LineFactory()
    browser = Client()
    browser.force_login(line.billing_account.customer.user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"

    with asgi_server_process(env={"DJANGO_SECRET_KEY": settings.SECRET_KEY, "PGAPPNAME": SERVER}) as url:
        for _ in range(60):
            request = urllib.request.Request(f"{url}/selfcare/", headers={"Cookie": cookie})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (a local test server)
                assert (response.status, response.url) == (200, f"{url}/selfcare/")
        # The last request's connection closes as its response leaves: give it a moment.
        deadline = time.monotonic() + 5
        while (held := server_sessions()) and time.monotonic() < deadline:
            time.sleep(0.05)

    assert held == 0


def test_a_burst_of_requests_holds_no_more_connections_than_the_server_runs_at_once():
    require_postgres()
    line = LineFactory()
    browser = Client()
    browser.force_login(line.billing_account.customer.user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    at_once = 3
    env = {"DJANGO_SECRET_KEY": settings.SECRET_KEY, "PGAPPNAME": SERVER, "DJANGO_HTTP_REQUESTS_AT_ONCE": str(at_once)}

    with asgi_server_process(env=env) as url:

        def load_pages() -> list[int]:
            statuses = []
            for _ in range(5):
                request = urllib.request.Request(f"{url}/selfcare/", headers={"Cookie": cookie})
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (a local test server)
                    statuses.append(response.status)
            return statuses

        with ThreadPoolExecutor(max_workers=40) as pool:
            burst = [pool.submit(load_pages) for _ in range(40)]
            most = 0
            while not all(f.done() for f in burst):
                most = max(most, server_sessions())
        statuses = [status for f in burst for status in f.result()]

    assert statuses == [200] * 200
    assert 0 < most <= at_once + 1  # and one for the websockets' thread
