import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_demo_opens_a_shop_with_plans_phones_and_a_launch_promotion(client, capsys):
    call_command("demo_load")
    logged_in = client.post("/accounts/login/", {"username": "alice", "password": "alice-demo"})
    assert logged_in.status_code == 302

    page = client.get("/shop/").content.decode()
    guided = client.get("/shop/guided/").content.decode()

    assert "Unlimited 40" in page
    assert "Six months free" in page
    assert "Business 100" not in page  # sold to enterprise customers only
    assert "Pixel 9" in guided
