"""Which outside services the suite may use, and what to do when one is missing.

Outside CI a test whose service is absent is skipped with a message saying what to set up;
under CI (``CI`` set) the same absence fails the run, so a green CI means it really ran.
"""

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.db import connection

UNDER_CI = bool(os.environ.get("CI"))


def service_missing(message: str) -> None:
    if UNDER_CI:
        pytest.fail(f"CI must run this test, but: {message}", pytrace=False)
    pytest.skip(message)


def require_postgres() -> None:
    if connection.vendor != "postgresql":
        service_missing("needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal")


def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        service_missing("needs Redis: set REDIS_URL=redis://127.0.0.1:6379/0")
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=2).close()
    except OSError:
        service_missing(f"needs Redis, but nothing answers at {url}")
    return url


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        service_missing("needs headless Chromium: install Debian's package (apt-get install chromium)")
    return path
