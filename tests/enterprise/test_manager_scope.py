"""Every page and fragment of the manager's portal, tried with a node of another company and
of a sibling subtree: 404, never data, and nothing changed."""

import pytest
from django.contrib.auth.models import Permission

from charging.models import NodeLimit
from portal.models import AuditEntry
from tests.enterprise.companies import acme
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def pages_of(node_id: int) -> list[tuple[str, str, dict]]:
    """Every enterprise URL that names a node, with what a manager would send."""
    change = {"unit": "bytes", "limit": "100", "reason": "try"}
    return [
        ("get", f"/enterprise/nodes/{node_id}/", {}),
        ("get", f"/enterprise/nodes/{node_id}/children/", {}),
        ("get", f"/enterprise/nodes/{node_id}/history/", {}),
        ("post", f"/enterprise/nodes/{node_id}/limit/", change),
        ("post", f"/enterprise/nodes/{node_id}/move/", {"unit": "bytes", "amount": "1", "reason": "try"}),
    ]


def assert_not_found_everywhere(client, node_id: int, *, secret: str) -> None:
    for method, url, data in pages_of(node_id):
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, url
        assert secret not in response.content.decode(), url


def test_a_manager_opens_no_page_of_another_companys_nodes(client):
    ours, theirs = acme(), acme(name="Globex")
    client.force_login(ours.manager)
    before = list(NodeLimit.objects.values_list("pk", "limit"))

    for node in [theirs.tree.root, theirs.tree.division, theirs.tree.team, theirs.tree.devices[0]]:
        assert_not_found_everywhere(client, node.pk, secret="Globex")

    assert list(NodeLimit.objects.values_list("pk", "limit")) == before
    assert not AuditEntry.objects.exists()


def test_a_sub_manager_opens_no_page_of_a_sibling_division_or_the_root(client):
    company = acme()
    client.force_login(company.sub_manager)
    before = list(NodeLimit.objects.values_list("pk", "limit"))

    for node in [company.operations, company.operations_team, company.operations_device, company.tree.root]:
        assert_not_found_everywhere(client, node.pk, secret="Operations")

    assert client.get(f"/enterprise/nodes/{company.tree.division.pk}/").status_code == 200
    assert list(NodeLimit.objects.values_list("pk", "limit")) == before
    assert not AuditEntry.objects.exists()


def test_headroom_cannot_be_moved_to_a_node_outside_the_managers_subtrees(client):
    company, other = acme(), acme(name="Globex")
    client.force_login(company.sub_manager)
    sales = company.tree.division
    before = list(NodeLimit.objects.values_list("pk", "limit"))

    for target in [company.operations, other.tree.division]:
        data = {"unit": "bytes", "amount": "10", "target": str(target.pk), "reason": "try"}
        response = client.post(f"/enterprise/nodes/{sales.pk}/move/", data)
        assert response.status_code == 404

    assert list(NodeLimit.objects.values_list("pk", "limit")) == before


def test_the_tree_and_search_show_only_the_managers_subtrees(client):
    company, other = acme(), acme(name="Globex")
    client.force_login(company.sub_manager)

    tree = client.get("/enterprise/").content.decode()
    found = client.get("/enterprise/search/", {"q": "3172"}).content.decode()
    by_other_number = client.get("/enterprise/search/", {"q": other.tree.lines[0].msisdn}).content.decode()

    assert "Sales" in tree
    assert "Operations" not in tree
    assert "Globex" not in tree
    assert f"/enterprise/nodes/{company.operations_device.pk}/" not in found
    assert "No line or cost centre of yours matches" in found
    assert f"/enterprise/nodes/{other.tree.devices[0].pk}/" not in by_other_number
    assert "No line or cost centre of yours matches" in by_other_number


def test_a_user_who_manages_nothing_sees_an_empty_tree_and_no_node(client):
    company = acme()
    client.force_login(UserFactory())

    assert "You manage no cost centres" in client.get("/enterprise/").content.decode()
    assert client.get(f"/enterprise/nodes/{company.tree.root.pk}/").status_code == 404


def test_an_agent_who_sees_every_line_has_no_managers_page(client):
    company = acme()
    agent = UserFactory(is_staff=True)
    agent.user_permissions.add(Permission.objects.get(codename="view_line"))
    client.force_login(agent)

    assert_not_found_everywhere(client, company.tree.division.pk, secret="Sales")
    assert "You manage no cost centres" in client.get("/enterprise/").content.decode()


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    company = acme()

    response = client.get(f"/enterprise/nodes/{company.tree.root.pk}/")

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
