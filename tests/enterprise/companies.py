"""Companies for the manager's pages: Acme (Sales and Operations divisions, a manager on the
root and a sub-manager on Sales) and Globex, another company with its own manager."""

from dataclasses import dataclass

from django.contrib.auth.models import User

from charging.models import NodeLimit
from charging.units import Unit
from enterprise.models import CostCentre, ManagerAssignment
from enterprise.services import cost_centre_create
from portal.services import line_create
from tests.charging.trees import MB, Tree, company_tree, limit_on
from tests.factories import UserFactory


@dataclass
class Acme:
    tree: Tree
    operations: CostCentre
    operations_team: CostCentre
    operations_device: CostCentre
    manager: User
    sub_manager: User
    sales_limit: NodeLimit
    operations_limit: NodeLimit


def acme(*, lines: int = 2, teams: int = 1, name: str = "Acme") -> Acme:
    """Acme's root holds a data pool; Sales (a North team with ``lines`` lines, and ``teams``
    - 1 more teams of as many) and Operations (one team, one line) each have a data limit."""
    tree = company_tree(lines=lines, pool_units=1000 * MB, name=name)
    for t in range(1, teams):
        team = cost_centre_create(parent=tree.division, name=f"Team {t}", kind=CostCentre.Kind.TEAM)
        for n in range(lines):
            line = line_create(billing_account=tree.account, msisdn=f"3171{tree.company.pk:03d}{t:02d}{n:04d}")
            cost_centre_create(parent=team, name=line.msisdn, kind=CostCentre.Kind.DEVICE, line=line)
    operations = cost_centre_create(parent=tree.root, name="Operations", kind=CostCentre.Kind.DIVISION)
    operations_team = cost_centre_create(parent=operations, name="Field", kind=CostCentre.Kind.TEAM)
    line = line_create(billing_account=tree.account, msisdn=f"3172{tree.company.pk:03d}0001", device_label="Van")
    device = cost_centre_create(parent=operations_team, name=line.msisdn, kind=CostCentre.Kind.DEVICE, line=line)
    manager = UserFactory(username=f"{name.lower()}-manager")
    ManagerAssignment.objects.create(user=manager, node=tree.root)
    sub_manager = UserFactory(username=f"{name.lower()}-sales")
    ManagerAssignment.objects.create(user=sub_manager, node=tree.division)
    sales_limit = limit_on(tree.division, 300 * MB)
    operations_limit = limit_on(operations, 200 * MB)
    tree.division.refresh_from_db()
    tree.root.refresh_from_db()
    tree.team.refresh_from_db()
    return Acme(tree, operations, operations_team, device, manager, sub_manager, sales_limit, operations_limit)


def limits_of(*nodes: CostCentre, unit: str = Unit.BYTES) -> dict[int, tuple[int, int, int]]:
    return {
        limit.node_id: (limit.limit, limit.used, limit.reserved)
        for limit in NodeLimit.objects.filter(node__in=nodes, unit=unit)
    }
