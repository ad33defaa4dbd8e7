"""A manager sets a node's limit and moves headroom between nodes: audited with who, when,
before, after and why; bad input is refused with the field named, and nothing changes."""

import re

import pytest
from django.core.exceptions import ValidationError

from charging.allocation import node_headroom_move, node_limit_change
from charging.models import NodeLimit
from charging.units import Unit
from portal.models import AuditEntry
from tests.charging.trees import MB
from tests.enterprise.companies import acme, limits_of

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_a_manager_raises_a_limit_and_the_change_is_recorded(client, django_capture_on_commit_callbacks):
    company = acme()
    sales = company.tree.division
    client.force_login(company.manager)

    with django_capture_on_commit_callbacks() as pushes:
        response = client.post(
            f"/enterprise/nodes/{sales.pk}/limit/", {"unit": "bytes", "limit": "450", "reason": "Trade fair"}
        )

    assert response.status_code == 302
    assert NodeLimit.objects.get(pk=company.sales_limit.pk).limit == 450 * MB
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.reason) == (company.manager, "node_limit.change", "Trade fair")
    assert entry.before["limit"] == 300 * MB
    assert entry.after["limit"] == 450 * MB
    assert len(pushes) == 1  # the node's figures are pushed after commit
    history = text(client.get(f"/enterprise/nodes/{sales.pk}/history/"))
    assert "Data limit 300.0 MB → 450.0 MB" in history
    assert "acme-manager" in history
    assert "Trade fair" in history


def test_a_limit_on_a_new_unit_is_created(client):
    company = acme()
    client.force_login(company.manager)

    client.post(
        f"/enterprise/nodes/{company.tree.team.pk}/limit/", {"unit": "seconds", "limit": "90", "reason": "Calls"}
    )

    limit = NodeLimit.objects.get(node=company.tree.team, unit=Unit.SECONDS)
    assert (limit.limit, limit.used, limit.on_exceed) == (90 * 60, 0, NodeLimit.OnExceed.BLOCK)


def test_a_limit_below_what_is_used_and_reserved_is_refused_naming_the_field(client):
    company = acme()
    NodeLimit.objects.filter(pk=company.sales_limit.pk).update(used=100 * MB, reserved=50 * MB)
    client.force_login(company.manager)

    response = client.post(
        f"/enterprise/nodes/{company.tree.division.pk}/limit/", {"unit": "bytes", "limit": "149", "reason": "Cut"}
    )

    assert response.status_code == 400
    assert response.context["limit_form"].errors["limit"] == [
        "149.0 MB is below what is already used and reserved (150.0 MB)."
    ]
    assert "below what is already used and reserved" in text(response)
    assert NodeLimit.objects.get(pk=company.sales_limit.pk).limit == 300 * MB
    assert not AuditEntry.objects.exists()


def test_setting_the_limit_it_already_has_records_nothing(client):
    company = acme()
    client.force_login(company.manager)

    response = client.post(
        f"/enterprise/nodes/{company.tree.division.pk}/limit/", {"unit": "bytes", "limit": "300", "reason": "Same"}
    )

    assert response.status_code == 400
    assert response.context["limit_form"].errors["limit"] == ["The limit is already 300.0 MB."]
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"unit": "bytes", "limit": "-5", "reason": "x"}, "limit"),
        ({"unit": "bytes", "limit": "lots", "reason": "x"}, "limit"),
        ({"unit": "bytes", "limit": "5", "reason": ""}, "reason"),
        ({"unit": "litres", "limit": "5", "reason": "x"}, "unit"),
    ],
)
def test_bad_limit_input_names_the_field_and_changes_nothing(client, data, field):
    company = acme()
    client.force_login(company.manager)

    response = client.post(f"/enterprise/nodes/{company.tree.division.pk}/limit/", data)

    assert response.status_code == 400
    assert list(response.context["limit_form"].errors) == [field]
    assert NodeLimit.objects.get(pk=company.sales_limit.pk).limit == 300 * MB


def test_headroom_moves_from_one_node_to_another_in_one_step(client):
    company = acme()
    sales, operations = company.tree.division, company.operations
    NodeLimit.objects.filter(pk=company.sales_limit.pk).update(used=100 * MB)
    client.force_login(company.manager)

    response = client.post(
        f"/enterprise/nodes/{sales.pk}/move/",
        {"unit": "bytes", "amount": "150", "target": str(operations.pk), "reason": "Field season"},
    )

    assert response.status_code == 302
    assert limits_of(sales, operations) == {sales.pk: (150 * MB, 100 * MB, 0), operations.pk: (350 * MB, 0, 0)}
    entries = {e.target_id: e for e in AuditEntry.objects.filter(action="node_limit.move")}
    assert set(entries) == {str(sales.pk), str(operations.pk)}
    assert entries[str(sales.pk)].before["source"]["limit"] == 300 * MB
    assert entries[str(sales.pk)].after["target"]["limit"] == 350 * MB
    history = text(client.get(f"/enterprise/nodes/{operations.pk}/history/"))
    assert "Data: 150.0 MB moved from Sales (limit 200.0 MB → 350.0 MB)" in history


def test_a_sub_manager_sees_a_move_from_outside_their_subtree_without_its_name(client):
    company = acme()
    node_headroom_move(
        source=company.operations,
        target=company.tree.division,
        unit=Unit.BYTES,
        amount=10 * MB,
        reason="Loan",
        actor=company.manager,
    )
    client.force_login(company.sub_manager)

    history = text(client.get(f"/enterprise/nodes/{company.tree.division.pk}/history/"))

    assert "10.0 MB moved from a cost centre outside your view" in history
    assert "Operations" not in history


@pytest.mark.parametrize(
    ("amount", "field", "message"),
    [
        ("201", "amount", "201.0 MB is more than Sales has free (200.0 MB)."),
        ("-3", "amount", "Ensure this value is greater than or equal to 1."),
        ("0", "amount", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_moving_more_than_the_free_headroom_or_nothing_is_refused(client, amount, field, message):
    company = acme()
    sales, operations = company.tree.division, company.operations
    NodeLimit.objects.filter(pk=company.sales_limit.pk).update(used=80 * MB, reserved=20 * MB)
    client.force_login(company.manager)
    before = limits_of(sales, operations)

    response = client.post(
        f"/enterprise/nodes/{sales.pk}/move/",
        {"unit": "bytes", "amount": amount, "target": str(operations.pk), "reason": "Try"},
    )

    assert response.status_code == 400
    assert response.context["move_form"].errors[field] == [message]
    assert limits_of(sales, operations) == before
    assert not AuditEntry.objects.exists()


def test_moving_to_a_node_with_no_limit_of_the_unit_is_refused():
    company = acme()

    with pytest.raises(ValidationError) as refused:
        node_headroom_move(
            source=company.tree.division,
            target=company.tree.team,
            unit=Unit.BYTES,
            amount=MB,
            reason="Try",
            actor=company.manager,
        )

    assert refused.value.message_dict == {"target": ["North has no Data limit: set one first."]}
    assert limits_of(company.tree.division) == {company.tree.division.pk: (300 * MB, 0, 0)}


def test_a_change_with_no_reason_is_refused():
    company = acme()

    with pytest.raises(ValidationError) as refused:
        node_limit_change(node=company.tree.division, unit=Unit.BYTES, limit=MB, reason=" ", actor=company.manager)

    assert list(refused.value.message_dict) == ["reason"]
