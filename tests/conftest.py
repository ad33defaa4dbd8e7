import pytest
from channels.layers import channel_layers
from django.db import connection
from rest_framework.test import APIClient

from charging.credentials import network_credential_issue
from charging.models import NetworkCredential
from portal.celery import app as celery_app


@pytest.fixture(autouse=True)
def tasks_run_in_process():
    """Tasks run in the test's process unless a test starts a real worker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test starts with an empty channel layer (no groups left by another test)."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def usage_poster(db):
    """An API client holding the network credential of the source ``mediation``, every scope."""
    return network_client(source="mediation", scopes=NetworkCredential.Scope.values)


def network_client(*, source: str, scopes) -> APIClient:
    """An API client sending a new network credential's key (``Authorization: Bearer``)."""
    issued = network_credential_issue(source=source, scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
    return client


def pytest_configure(config):
    from django.conf import settings

    # Threads (websocket consumers, the live server) must not keep connections open past a
    # test, or the test database cannot be dropped at the end of the run.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A password hashed to be slow to crack is slow to check too: tests log in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end sessions that worker threads left open."""
    yield
    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        connection.close()
