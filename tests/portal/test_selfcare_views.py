import pytest
from django.contrib.auth.models import Permission, User

from tests.factories import MB, LineFactory, UserFactory, data_bucket

pytestmark = pytest.mark.django_db


def test_dashboard_asks_to_log_in(client):
    response = client.get("/selfcare/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_dashboard_shows_only_the_users_own_lines_and_allowances(client):
    mine = LineFactory(msisdn="31620000001")
    data_bucket(mine, 1536 * MB)
    LineFactory(msisdn="31620000002")
    client.force_login(mine.billing_account.customer.user)

    page = client.get("/selfcare/").content.decode()

    assert "31620000001" in page
    assert "1.50 GB" in page
    assert "31620000002" not in page


def test_a_foreign_line_answers_404(client):
    mine = LineFactory()
    theirs = LineFactory()
    client.force_login(mine.billing_account.customer.user)

    assert client.get(f"/selfcare/lines/{mine.pk}/").status_code == 200
    assert client.get(f"/selfcare/lines/{theirs.pk}/").status_code == 404


def test_an_agent_with_the_right_sees_any_line(client):
    line = LineFactory()
    agent = UserFactory(is_staff=True)
    agent.user_permissions.add(Permission.objects.get(codename="view_line"))
    client.force_login(agent)

    assert client.get(f"/selfcare/lines/{line.pk}/").status_code == 200


def test_agent_finds_a_customer_by_msisdn_in_the_admin(client):
    line = LineFactory(msisdn="31629990000")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get("/admin/portal/customer/", {"q": "31629990000"}).content.decode()

    assert line.billing_account.customer.name in page


def test_a_company_manager_sees_the_cost_centres_they_manage_not_every_line(client):
    from django.core.management import call_command

    call_command("demo_load")
    client.force_login(User.objects.get(username="acme-manager"))

    page = client.get("/selfcare/").content.decode()

    assert "Acme Corporation · Acme Corporation (Company): 306 lines" in page
    assert "31650000001" not in page
