"""Passwords people choose pass Django's full set of validators."""

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def refusals(password: str, user=None) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as error:
        return {e.code for e in error.error_list}
    return set()


def test_a_short_common_all_digit_password_is_refused_for_each_reason():
    assert refusals("1234567") == {"password_too_short", "password_too_common", "password_entirely_numeric"}


def test_a_password_like_the_users_name_is_refused():
    user = UserFactory.build(username="carla.jansen", email="carla.jansen@example.com")

    assert refusals("carla.jansen", user) == {"password_too_similar"}


def test_a_long_uncommon_password_is_accepted():
    assert refusals("plum-harbour-47-lantern") == set()


def test_an_agent_cannot_give_a_new_user_a_weak_password_in_the_admin(admin_client):
    before = User.objects.count()

    answer = admin_client.post(
        "/admin/auth/user/add/",
        {"username": "dana", "password1": "password", "password2": "password", "usable_password": "true"},
    )

    assert answer.status_code == 200
    assert "This password is too common." in answer.content.decode()
    assert User.objects.count() == before
