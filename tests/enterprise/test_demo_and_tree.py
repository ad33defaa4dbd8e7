import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from charging.ledger import ledger_mismatches
from charging.models import Bucket, NodeLimit
from enterprise.models import Company, CostCentre, ManagerAssignment
from enterprise.selectors import cost_centre_path, cost_centre_tree_is_valid
from portal.demo.data import DEMO_LOGINS
from portal.models import Line

pytestmark = pytest.mark.django_db


def test_demo_load_builds_an_enterprise_tree_of_hundreds_of_lines_and_prints_logins(capsys):
    call_command("demo_load")
    out = capsys.readouterr().out

    company = Company.objects.get()
    devices = CostCentre.objects.filter(company=company, kind=CostCentre.Kind.DEVICE)
    assert devices.count() == 306
    assert Line.objects.filter(billing_account__customer__company=company).count() == 306
    assert cost_centre_tree_is_valid(company=company)
    assert ledger_mismatches() == []
    for login in DEMO_LOGINS:
        assert f"{login.username} / {login.password}" in out


def test_demo_load_twice_changes_nothing(capsys):
    call_command("demo_load")
    lines = Line.objects.count()

    call_command("demo_load")

    assert Line.objects.count() == lines
    assert "already loaded" in capsys.readouterr().out


def test_a_lines_path_runs_from_the_company_root_down_to_its_device():
    call_command("demo_load")
    line = Line.objects.get(msisdn="31650000001")

    path = cost_centre_path(line_id=line.pk)

    assert [node.kind for node in path] == ["company", "division", "department", "team", "device"]
    assert path[-1].line_id == line.pk


def test_tree_check_notices_broken_numbering():
    call_command("demo_load")
    company = Company.objects.get()
    node = CostCentre.objects.filter(company=company, kind="team").order_by("lft").first()
    CostCentre.objects.filter(pk=node.pk).update(rght=node.lft)

    assert not cost_centre_tree_is_valid(company=company)


def test_demo_gives_acme_a_pool_per_unit_limits_and_a_sales_sub_manager(client):

    call_command("demo_load")
    company = Company.objects.get()
    sales = CostCentre.objects.get(company=company, name="Sales")

    pools = Bucket.objects.filter(cost_centre__company=company, cost_centre__parent=None)
    assert sorted(pools.values_list("unit", flat=True)) == ["bytes", "messages", "seconds"]
    assert set(NodeLimit.objects.filter(node__company=company).values_list("on_exceed", flat=True)) == {
        "block",
        "throttle",
        "overage",
    }
    assert ManagerAssignment.objects.get(user__username="acme-sales").node == sales
    sub_manager = User.objects.get(username="acme-sales")
    assert sub_manager.check_password("acme-demo")
    client.force_login(sub_manager)
    assert client.get(f"/enterprise/nodes/{sales.pk}/").status_code == 200
    operations = CostCentre.objects.get(company=company, name="Operations")
    assert client.get(f"/enterprise/nodes/{operations.pk}/").status_code == 404
    assert ledger_mismatches() == []
