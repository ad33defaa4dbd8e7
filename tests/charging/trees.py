"""A small company for charging tests: root -> division -> team -> device nodes, one pool."""

from dataclasses import dataclass
from decimal import Decimal

from charging.models import Bucket, NodeLimit
from charging.services import bucket_grant, money_balance_open, node_limit_set
from charging.units import Unit
from enterprise.models import Company, CostCentre
from enterprise.services import company_create, cost_centre_create
from portal.models import BillingAccount, Customer, Line
from portal.services import billing_account_open, customer_create, line_create

MB = 1024**2


@dataclass
class Tree:
    company: Company
    account: BillingAccount
    root: CostCentre
    division: CostCentre
    team: CostCentre
    devices: list[CostCentre]
    lines: list[Line]
    pool: Bucket | None


def company_tree(*, lines: int = 2, pool_units: int | None = 100 * MB, credit: Decimal = Decimal(0), name="Acme"):
    customer = customer_create(name=name, kind=Customer.Kind.COMPANY, email="telecom@acme.example")
    account = billing_account_open(customer=customer, kind=BillingAccount.Kind.POSTPAID, credit_limit=credit)
    money_balance_open(billing_account=account)
    company = company_create(customer=customer, name=name)
    root = CostCentre.objects.get(company=company, parent=None)
    division = cost_centre_create(parent=root, name="Sales", kind=CostCentre.Kind.DIVISION)
    team = cost_centre_create(parent=division, name="North", kind=CostCentre.Kind.TEAM)
    created, devices = [], []
    for n in range(lines):
        line = line_create(billing_account=account, msisdn=f"3170{customer.pk:03d}{n:04d}", device_label=f"Phone {n}")
        created.append(line)
        devices.append(cost_centre_create(parent=team, name=line.msisdn, kind=CostCentre.Kind.DEVICE, line=line))
    pool = None
    if pool_units:
        pool = bucket_grant(cost_centre=root, name="Company data pool", unit=Unit.BYTES, quantity=pool_units)
    return Tree(company, account, root, division, team, devices, created, pool)


def limit_on(node: CostCentre, units: int, *, unit: str = Unit.BYTES, on_exceed=NodeLimit.OnExceed.BLOCK, **extra):
    return node_limit_set(node=node, unit=unit, limit=units, on_exceed=on_exceed, **extra)
