"""The manager's tree and node pages: roots and children on demand, search, breadcrumbs, a
node's figures, pools and lines; a page's queries do not grow with the company."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from charging.models import NodeLimit
from charging.services import bucket_grant
from charging.units import Unit
from enterprise.models import CostCentre
from enterprise.services import cost_centre_create
from tests.charging.trees import MB, limit_on
from tests.enterprise.companies import acme

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page's text with tags and runs of white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_tree_shows_the_root_and_its_children_with_their_limits_but_not_deeper(client):
    company = acme(lines=3)
    client.force_login(company.manager)

    page = text(client.get("/enterprise/"))

    assert "Acme Company · 4 lines" in page
    assert "Sales Division · 3 lines Data 0.0 MB / 300.0 MB" in page
    assert "Operations Division · 1 line Data 0.0 MB / 200.0 MB" in page
    assert "North" not in page  # a division's teams load when it is opened


def test_opening_a_node_loads_its_children_as_a_fragment(client):
    company = acme(lines=2)
    client.force_login(company.manager)

    fragment = client.get(f"/enterprise/nodes/{company.tree.division.pk}/children/")

    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert "North Team · 2 lines" in text(fragment)
    team = text(client.get(f"/enterprise/nodes/{company.tree.team.pk}/children/"))
    assert company.tree.lines[0].msisdn in team
    assert "Phone 0" in team


def test_a_node_with_very_many_children_shows_the_first_in_the_tree_and_links_to_the_rest(client, monkeypatch):
    monkeypatch.setattr("enterprise.views.CHILDREN_SHOWN", 2)
    company = acme(lines=3)
    client.force_login(company.manager)

    fragment = client.get(f"/enterprise/nodes/{company.tree.team.pk}/children/")

    assert [row["node"] for row in fragment.context["rows"]] == company.tree.devices[:2]
    assert "More below North: open it to see every line" in text(fragment)


def test_a_sub_manager_sees_their_division_as_the_top_of_their_tree(client):
    company = acme()
    client.force_login(company.sub_manager)

    page = text(client.get("/enterprise/"))
    crumbs = client.get(f"/enterprise/nodes/{company.tree.team.pk}/").content.decode()

    assert "Acme · Sales" in page
    assert "North Team" in page
    assert f'href="/enterprise/nodes/{company.tree.division.pk}/">Sales</a>' in crumbs
    assert f"/enterprise/nodes/{company.tree.root.pk}/" not in crumbs


def test_search_by_number_jumps_to_the_line(client):
    company = acme()
    client.force_login(company.manager)
    line = company.tree.lines[1]

    response = client.get("/enterprise/search/", {"q": f"+{line.msisdn[:4]} {line.msisdn[4:]}"})

    assert response.status_code == 302
    assert response.url == f"/enterprise/nodes/{company.tree.devices[1].pk}/"


def test_search_by_a_users_name_or_a_node_name_lists_the_matches(client):
    company = acme()
    device = company.tree.devices[0]
    CostCentre.objects.filter(pk=device.pk).update(personal_account=company.tree.account)
    client.force_login(company.manager)

    by_user = client.get("/enterprise/search/", {"q": "acme"})
    by_node = client.get("/enterprise/search/", {"q": "field"})

    assert f"/enterprise/nodes/{device.pk}/" in by_user.content.decode()
    assert by_node.status_code == 302
    assert by_node.url == f"/enterprise/nodes/{company.operations_team.pk}/"


def test_a_node_shows_its_limit_used_reserved_remaining_allocation_below_and_pools(client):
    company = acme(lines=2)
    NodeLimit.objects.filter(pk=company.sales_limit.pk).update(used=120 * MB, reserved=30 * MB)
    NodeLimit.objects.filter(pk=company.operations_limit.pk).update(
        used=70 * MB, period_start=timezone.now() - timedelta(days=40)
    )
    limit_on(company.tree.team, 100 * MB)
    limit_on(company.tree.team, 600, unit=Unit.SECONDS)
    bucket_grant(cost_centre=company.tree.root, name="Company voice pool", unit=Unit.SECONDS, quantity=6000)
    client.force_login(company.manager)

    sales = text(client.get(f"/enterprise/nodes/{company.tree.division.pk}/"))
    root = text(client.get(f"/enterprise/nodes/{company.tree.root.pk}/"))

    assert "Limit 300.0 MB Used 120.0 MB Reserved 30.0 MB Remaining 150.0 MB" in sales
    assert "Data : 100.0 MB on 1 cost centre, 0.0 MB used" in sales
    assert "Voice and video : 10 min 00 s on 1 cost centre" in sales
    # At the root, the team's limit sits inside Sales': only Sales and Operations count.
    # Operations' limit last counted in an earlier month: it has used nothing this one.
    assert "Data : 500.0 MB on 2 cost centres, 120.0 MB used, 30.0 MB reserved" in root
    assert "Company data pool 1,000.0 MB left of 1,000.0 MB" in root
    assert "Company voice pool 100 min 00 s left" in root


def test_a_node_lists_its_lines_a_page_at_a_time(client):
    company = acme(lines=30)
    client.force_login(company.manager)

    first = client.get(f"/enterprise/nodes/{company.tree.division.pk}/")
    second = client.get(f"/enterprise/nodes/{company.tree.division.pk}/", {"page": 2})

    assert len(first.context["lines"]) == 25
    assert "Page 1 of 2" in text(first)
    assert [d.line.msisdn for d in second.context["lines"]] == [line.msisdn for line in company.tree.lines[25:]]


def test_a_node_page_subscribes_to_its_live_figures(client):
    company = acme()
    client.force_login(company.manager)

    page = client.get(f"/enterprise/nodes/{company.tree.division.pk}/").content.decode()

    assert f'data-subscribe-node="{company.tree.division.pk}"' in page
    assert "js/live.js" in page
    assert "js/enterprise.js" in page


def queries_of(client, url: str) -> int:
    client.get(url)  # once first: process-wide caches (content types) are warm in a server
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_pages_queries_do_not_grow_with_the_company(client):
    small, big = acme(lines=2, name="Small"), acme(lines=20, teams=4, name="Big")
    for company in (small, big):
        for node in CostCentre.objects.filter(company=company.tree.company, kind=CostCentre.Kind.TEAM):
            limit_on(node, 50 * MB)
        cost_centre_create(parent=company.tree.root, name="Extra", kind=CostCentre.Kind.DIVISION)

    counts = {}
    for name, company in (("small", small), ("big", big)):
        client.force_login(company.manager)
        sales = company.tree.division.pk
        counts[name] = [
            queries_of(client, "/enterprise/"),
            queries_of(client, f"/enterprise/nodes/{company.tree.root.pk}/"),
            queries_of(client, f"/enterprise/nodes/{sales}/"),
            queries_of(client, f"/enterprise/nodes/{sales}/children/"),
            queries_of(client, f"/enterprise/nodes/{sales}/history/"),
            queries_of(client, "/enterprise/search/?q=3"),
        ]

    assert counts["small"] == counts["big"]
