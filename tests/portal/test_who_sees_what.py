"""Who sees which line, over pages and the live socket: a consumer their own, a manager the
subtrees assigned to them (not whatever the company's login owns), an agent what their
group allows. Anything else answers as if it did not exist."""

from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.db import transaction

from charging.usage_events import usage_event_charge, usage_event_ingest
from enterprise.models import CostCentre, ManagerAssignment
from enterprise.selectors import lines_visible_to
from enterprise.services import cost_centre_create
from portal.asgi import application
from portal.models import Customer, Line
from portal.services import line_create
from tests.charging.trees import Tree, company_tree, limit_on
from tests.factories import MB, LineFactory, UserFactory, data_bucket
from tests.livetools import until_ready, websocket_headers


@dataclass
class Company:
    tree: Tree
    operations: Line
    engineering: Line
    sales: Line
    engineering_node: CostCentre


def company() -> Company:
    """Acme: Sales (North team, one phone), Operations (one phone), Engineering (one phone)."""
    tree = company_tree(lines=1)
    lines = {}
    nodes = {}
    for number, name in enumerate(["Operations", "Engineering"], start=1):
        nodes[name] = cost_centre_create(parent=tree.root, name=name, kind=CostCentre.Kind.DIVISION)
        lines[name] = line_create(billing_account=tree.account, msisdn=f"3179000000{number}")
        cost_centre_create(parent=nodes[name], name=lines[name].msisdn, kind=CostCentre.Kind.DEVICE, line=lines[name])
    return Company(tree, lines["Operations"], lines["Engineering"], tree.lines[0], nodes["Engineering"])


def company_login(acme: Company) -> User:
    """The company's own login, as the demo has it: the customer's user."""
    login = UserFactory(username="acme-manager")
    Customer.objects.filter(pk=acme.tree.company.customer_id).update(user=login)
    return login


def reassigned_to_engineering(acme: Company, manager: User) -> None:
    ManagerAssignment.objects.create(user=manager, node=acme.operations.cost_centre.parent)
    ManagerAssignment.objects.filter(user=manager).update(node=acme.engineering_node)


# --- Pages ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manager_reassigned_to_engineering_no_longer_opens_an_operations_line(client):
    acme = company()
    manager = company_login(acme)
    reassigned_to_engineering(acme, manager)
    client.force_login(manager)

    assert client.get(f"/selfcare/lines/{acme.engineering.pk}/").status_code == 200
    assert client.get(f"/selfcare/lines/{acme.operations.pk}/").status_code == 404
    assert client.get(f"/selfcare/lines/{acme.sales.pk}/").status_code == 404


@pytest.mark.django_db
def test_a_sub_manager_who_is_not_the_companys_login_sees_the_lines_of_their_subtree(client):
    acme = company()
    company_login(acme)
    sub_manager = UserFactory()
    ManagerAssignment.objects.create(user=sub_manager, node=acme.tree.division)  # Sales
    client.force_login(sub_manager)

    assert client.get(f"/selfcare/lines/{acme.sales.pk}/").status_code == 200
    assert client.get(f"/selfcare/lines/{acme.engineering.pk}/").status_code == 404
    assert "Sales (Division): 1 lines" in client.get("/selfcare/").content.decode()


@pytest.mark.django_db
def test_the_companys_login_with_no_assignment_sees_none_of_its_lines(client):
    acme = company()
    client.force_login(company_login(acme))

    page = client.get("/selfcare/").content.decode()

    assert all(client.get(f"/selfcare/lines/{line.pk}/").status_code == 404 for line in Line.objects.all())
    assert acme.sales.msisdn not in page


@pytest.mark.django_db
def test_a_manager_at_the_root_sees_every_line_of_their_company_and_no_other():
    acme = company()
    manager = company_login(acme)
    ManagerAssignment.objects.create(user=manager, node=acme.tree.root)
    other = company_tree(lines=1, name="Globex")
    consumer_line = LineFactory()

    visible = set(lines_visible_to(user=manager).values_list("pk", flat=True))

    assert visible == {acme.sales.pk, acme.operations.pk, acme.engineering.pk}
    assert not visible & {other.lines[0].pk, consumer_line.pk}


@pytest.mark.django_db
def test_a_consumer_who_also_manages_a_team_sees_their_own_lines_and_the_teams():
    acme = company()
    own = LineFactory()
    person = own.billing_account.customer.user
    ManagerAssignment.objects.create(user=person, node=acme.tree.team)

    assert set(lines_visible_to(user=person).values_list("pk", flat=True)) == {own.pk, acme.sales.pk}


@pytest.mark.django_db
def test_staff_without_the_groups_right_see_no_line(client):
    line = LineFactory()
    client.force_login(UserFactory(is_staff=True))

    assert client.get(f"/selfcare/lines/{line.pk}/").status_code == 404


@pytest.mark.django_db
def test_an_agent_whose_group_allows_it_sees_a_company_line(client):
    acme = company()
    agent = UserFactory(is_staff=True)
    agent.user_permissions.add(Permission.objects.get(codename="view_line"))
    client.force_login(agent)

    assert client.get(f"/selfcare/lines/{acme.operations.pk}/").status_code == 200


# --- The live socket --------------------------------------------------------------------------


async def connect(user) -> WebsocketCommunicator:
    headers = await database_sync_to_async(websocket_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def charge(line: Line, external_id: str) -> None:
    with transaction.atomic():
        event, _ = usage_event_ingest(
            payload={"external_id": external_id, "msisdn": line.msisdn, "service": "data", "quantity": MB}
        )
    usage_event_charge(event_id=event.pk)


@pytest.mark.django_db(transaction=True)
async def test_a_manager_reassigned_to_engineering_cannot_join_an_operations_lines_group():
    def build():
        acme = company()
        manager = company_login(acme)
        reassigned_to_engineering(acme, manager)
        data_bucket(acme.operations, 10 * MB)
        return acme, manager

    acme, manager = await database_sync_to_async(build)()
    socket = await connect(manager)
    ready, _ = await until_ready(socket)

    await socket.send_json_to({"action": "subscribe", "line": acme.operations.pk})
    refused = await socket.receive_json_from()
    await database_sync_to_async(charge)(acme.operations, "ops-1")

    assert (ready["lines"], ready["cost_centres"]) == ([], [acme.engineering_node.pk])
    assert refused == {"type": "error", "code": "not_found", "line": acme.operations.pk}
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_sub_manager_watches_a_line_of_their_subtree_live():
    def build():
        acme = company()
        sub_manager = UserFactory()
        ManagerAssignment.objects.create(user=sub_manager, node=acme.engineering_node)
        data_bucket(acme.engineering, 10 * MB)
        limit_on(acme.engineering_node, 50 * MB)  # so that the node's figures move too
        return acme, sub_manager

    acme, sub_manager = await database_sync_to_async(build)()
    socket = await connect(sub_manager)
    await until_ready(socket)

    await socket.send_json_to({"action": "subscribe", "line": acme.engineering.pk})
    subscribed = await socket.receive_json_from()
    current = await socket.receive_json_from()
    await database_sync_to_async(charge)(acme.engineering, "eng-1")
    pushed = [await socket.receive_json_from(timeout=2) for _ in range(2)]

    assert subscribed == {"type": "subscribed", "line": acme.engineering.pk}
    assert (current["type"], current["line"], current["buckets"][0]["remaining"]) == (
        "line.changed",
        acme.engineering.pk,
        10 * MB,
    )
    assert sorted(m["type"] for m in pushed) == ["line.changed", "node.changed"]
    await socket.disconnect()
