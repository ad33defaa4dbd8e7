"""Failed logins are throttled per account and per address, on the portal's login page and
the admin's; an agent (or an operator) unlocks an account."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
LIMIT = settings.AXES_FAILURE_LIMIT


def log_in(client, username: str, password: str, *, url: str = LOGIN, address: str = "203.0.113.7"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_forty_wrong_passwords_then_the_right_one_does_not_log_in(client):
    UserFactory(username="carla")
    for attempt in range(40):
        log_in(client, "carla", f"guess-{attempt}")

    answer = log_in(client, "carla", "secret-pass")

    assert answer.status_code == 429
    assert "Too many failed logins" in answer.content.decode()
    assert not logged_in(client)


def test_failures_below_the_limit_still_let_the_right_password_in(client):
    UserFactory(username="carla")
    for attempt in range(LIMIT - 1):
        assert log_in(client, "carla", f"guess-{attempt}").status_code == 200

    answer = log_in(client, "carla", "secret-pass")

    assert answer.status_code == 302
    assert logged_in(client)
    assert not AccessAttempt.objects.exists()  # a good login forgets the failures before it


def test_failures_up_to_the_limit_lock_the_account_and_refuse_the_right_password(client):
    UserFactory(username="carla")
    for attempt in range(LIMIT - 1):
        assert log_in(client, "carla", f"guess-{attempt}").status_code == 200
    assert log_in(client, "carla", "last-guess").status_code == 429

    answer = log_in(client, "carla", "secret-pass")

    assert answer.status_code == 429
    assert not logged_in(client)


def test_an_account_locked_from_one_address_is_locked_from_every_address(client):
    UserFactory(username="carla")
    for attempt in range(LIMIT):
        log_in(client, "carla", f"guess-{attempt}", address="203.0.113.7")

    answer = log_in(client, "carla", "secret-pass", address="198.51.100.20")

    assert answer.status_code == 429
    assert not logged_in(client)


def test_an_address_trying_many_accounts_is_locked_for_every_account(client):
    UserFactory(username="carla")
    for attempt in range(LIMIT):
        log_in(client, f"someone-{attempt}", "guess", address="203.0.113.7")

    refused = log_in(client, "carla", "secret-pass", address="203.0.113.7")
    elsewhere = log_in(client, "carla", "secret-pass", address="198.51.100.20")

    assert refused.status_code == 429
    assert elsewhere.status_code == 302
    assert logged_in(client)


def test_an_account_unlocked_by_the_command_logs_in_again(client):
    UserFactory(username="carla")
    for attempt in range(LIMIT):
        log_in(client, "carla", f"guess-{attempt}")
    assert log_in(client, "carla", "secret-pass").status_code == 429

    call_command("axes_reset_username", "carla")
    answer = log_in(client, "carla", "secret-pass")

    assert answer.status_code == 302
    assert logged_in(client)


def test_the_demo_agent_unlocks_an_account_in_the_admin(client):
    call_command("demo_load")
    for attempt in range(LIMIT):
        log_in(client, "alice", f"guess-{attempt}")
    agent = Client()
    assert log_in(agent, "agent", "agent-demo", url=ADMIN_LOGIN, address="198.51.100.20").status_code == 302
    attempts = list(AccessAttempt.objects.filter(username="alice").values_list("pk", flat=True))

    listed = agent.get("/admin/axes/accessattempt/", {"q": "alice"})
    unlocked = agent.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    answer = log_in(client, "alice", "alice-demo")

    assert listed.status_code == 200
    assert "alice" in listed.content.decode()
    assert unlocked.status_code == 302
    assert not AccessAttempt.objects.filter(username="alice").exists()
    assert answer.status_code == 302
    assert logged_in(client)


def test_the_admin_login_is_throttled_too(client):
    UserFactory(username="sam", is_staff=True)
    for attempt in range(40):
        log_in(client, "sam", f"guess-{attempt}", url=ADMIN_LOGIN)

    answer = log_in(client, "sam", "secret-pass", url=ADMIN_LOGIN)

    assert answer.status_code == 429
    assert not logged_in(client)


def test_failures_on_the_portal_lock_the_admin_login_of_the_same_account(client):
    UserFactory(username="sam", is_staff=True)
    for attempt in range(LIMIT):
        log_in(client, "sam", f"guess-{attempt}")

    answer = log_in(client, "sam", "secret-pass", url=ADMIN_LOGIN)

    assert answer.status_code == 429
    assert not logged_in(client)
