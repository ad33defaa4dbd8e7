"""Agents cannot hand one person's access to another: a customer's login is set once, to a
login tied to nothing else, and a manager's node goes only to someone with business there."""

import pytest
from django.contrib.auth.models import User

from enterprise.models import CostCentre, ManagerAssignment
from portal.models import Customer
from tests.charging.trees import company_tree
from tests.factories import BillingAccountFactory, CustomerFactory, LineFactory, UserFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/portal/customer/"
ASSIGNMENTS = "/admin/enterprise/managerassignment/"


@pytest.fixture
def agent_client(client):
    client.force_login(UserFactory(username="agent-ann", is_staff=True, is_superuser=True))
    return client


def as_posted(response, **changes) -> dict:
    """The change form of ``response`` as the browser would post it back, with ``changes``."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms.append(inline.formset.management_form)
        forms.extend(inline.formset.forms)
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value
    return {**data, **changes}


def test_an_agent_cannot_give_bobs_customer_to_alices_login(agent_client):
    alice = LineFactory().billing_account.customer.user
    bob = LineFactory().billing_account.customer
    page = agent_client.get(f"{CUSTOMERS}{bob.pk}/change/")

    response = agent_client.post(f"{CUSTOMERS}{bob.pk}/change/", as_posted(page, user=alice.pk))

    assert 'name="user"' not in page.content.decode()  # set once: read-only from then on
    assert response.status_code == 302
    bob.refresh_from_db()
    assert bob.user != alice


def test_a_customer_without_a_login_cannot_be_given_another_customers_login(agent_client):
    alice = LineFactory().billing_account.customer.user
    bob = CustomerFactory(user=None)
    page = agent_client.get(f"{CUSTOMERS}{bob.pk}/change/")

    response = agent_client.post(f"{CUSTOMERS}{bob.pk}/change/", as_posted(page, user=alice.pk))

    assert response.status_code == 200
    assert f"{alice} is already the login of" in response.content.decode()
    bob.refresh_from_db()
    assert bob.user is None


@pytest.mark.parametrize(
    ("login", "refusal"),
    [
        (lambda: UserFactory(username="agent-bo", is_staff=True), "agent-bo is call-centre staff"),
        (lambda: _manager_of_globex(), "globex-manager manages Globex of Globex"),
    ],
    ids=["an agent", "another company's manager"],
)
def test_a_customer_cannot_be_given_an_agents_or_another_companys_login(agent_client, login, refusal):
    user = login()
    customer = CustomerFactory(user=None)
    page = agent_client.get(f"{CUSTOMERS}{customer.pk}/change/")

    response = agent_client.post(f"{CUSTOMERS}{customer.pk}/change/", as_posted(page, user=user.pk))

    assert refusal in response.content.decode()
    customer.refresh_from_db()
    assert customer.user is None


def test_a_customer_without_a_login_is_given_a_new_one(agent_client):
    customer = CustomerFactory(user=None)
    login = UserFactory()
    page = agent_client.get(f"{CUSTOMERS}{customer.pk}/change/")

    response = agent_client.post(f"{CUSTOMERS}{customer.pk}/change/", as_posted(page, user=login.pk))

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.user == login


def _manager_of_globex() -> User:
    globex = company_tree(lines=1, name="Globex")
    manager = UserFactory(username="globex-manager")
    ManagerAssignment.objects.create(user=manager, node=globex.root)
    return manager


# --- Manager assignments --------------------------------------------------------------------------


def assign(client, user: User, node: CostCentre):
    return client.post(f"{ASSIGNMENTS}add/", {"user": user.pk, "node": node.pk, "delegated_by": ""})


def test_a_consumer_cannot_be_given_a_companys_root(agent_client):
    acme = company_tree(lines=1)
    alice = LineFactory().billing_account.customer.user

    response = assign(agent_client, alice, acme.root)

    assert response.status_code == 200
    assert f"{alice} is a consumer&#x27;s login: they cannot be given all of Acme." in response.content.decode()
    assert not ManagerAssignment.objects.exists()


def test_a_consumer_cannot_be_given_a_node_of_a_company_they_have_nothing_to_do_with(agent_client):
    acme = company_tree(lines=1)
    alice = LineFactory().billing_account.customer.user

    response = assign(agent_client, alice, acme.team)

    assert f"{alice} is a consumer&#x27;s login with nothing to do with Acme." in response.content.decode()
    assert not ManagerAssignment.objects.exists()


def test_an_employee_whose_account_pays_for_a_company_device_may_manage_a_team(agent_client):
    acme = company_tree(lines=1)
    employee = BillingAccountFactory()
    CostCentre.objects.filter(pk=acme.devices[0].pk).update(personal_account=employee)

    response = assign(agent_client, employee.customer.user, acme.team)

    assert response.status_code == 302
    assert ManagerAssignment.objects.get().node == acme.team


def test_the_companys_own_login_may_manage_its_root(agent_client):
    acme = company_tree(lines=1)
    login = UserFactory()
    Customer.objects.filter(pk=acme.company.customer_id).update(user=login)

    assert assign(agent_client, login, acme.root).status_code == 302
    assert ManagerAssignment.objects.filter(user=login, node=acme.root).exists()


def test_a_new_login_may_be_made_a_sub_manager(agent_client):
    acme = company_tree(lines=1)
    sub_manager = UserFactory()

    assert assign(agent_client, sub_manager, acme.division).status_code == 302
    assert ManagerAssignment.objects.filter(user=sub_manager, node=acme.division).exists()


def test_another_companys_manager_or_an_agent_cannot_be_given_a_node(agent_client):
    acme = company_tree(lines=1)
    globex_manager = _manager_of_globex()
    agent = UserFactory(username="agent-bo", is_staff=True)

    refused = assign(agent_client, globex_manager, acme.team).content.decode()
    staff = assign(agent_client, agent, acme.team).content.decode()

    assert "globex-manager belongs to Globex: they cannot manage part of Acme." in refused
    assert "agent-bo is call-centre staff" in staff
    assert ManagerAssignment.objects.count() == 1  # Globex's own


def test_an_assignment_cannot_be_moved_to_a_consumer_in_the_admin(agent_client):
    acme = company_tree(lines=1)
    assignment = ManagerAssignment.objects.create(user=UserFactory(), node=acme.team)
    alice = LineFactory().billing_account.customer.user

    response = agent_client.post(
        f"{ASSIGNMENTS}{assignment.pk}/change/", {"user": alice.pk, "node": acme.root.pk, "delegated_by": ""}
    )

    assert response.status_code == 200
    assignment.refresh_from_db()
    assert (assignment.user_id, assignment.node) != (alice.pk, acme.root)


def test_a_company_does_not_move_to_another_customer_in_the_admin(agent_client):
    acme = company_tree(lines=1)
    stranger = CustomerFactory()

    page = agent_client.get(f"/admin/enterprise/company/{acme.company.pk}/change/")
    agent_client.post(f"/admin/enterprise/company/{acme.company.pk}/change/", as_posted(page, customer=stranger.pk))

    assert 'name="customer"' not in page.content.decode()
    acme.company.refresh_from_db()
    assert acme.company.customer_id != stranger.pk
