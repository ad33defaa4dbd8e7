"""Demo data: two consumers, an enterprise with a few hundred lines and an agent; the network
key the usage simulator feeds usage with is issued when it starts. Sits above every app, like
the views."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.utils import timezone

from charging.credentials import network_credential_issue
from charging.models import LedgerEntry, NetworkCredential, NodeLimit, Tariff
from charging.services import bucket_grant, money_balance_open, money_post, node_limit_set
from charging.units import Service, Unit
from enterprise.models import CostCentre, ManagerAssignment
from enterprise.selectors import company_root
from enterprise.services import company_create, cost_centre_create
from portal.demo.catalog import catalog_demo_load
from portal.models import BillingAccount, Customer
from portal.services import billing_account_open, customer_create, line_create

GB = 1024**3
MB = 1024**2
DIVISIONS = ["Engineering", "Operations", "Sales"]
DEPARTMENTS = ["North", "South", "West"]
TEAMS = ["Alpha", "Bravo"]
LINES_PER_TEAM = 17
AGENT_GROUP = "Call-centre agents"
MEDIATION_SOURCE = "mediation"


@dataclass(frozen=True)
class Login:
    role: str
    username: str
    password: str


DEMO_LOGINS = [
    Login("consumer", "alice", "alice-demo"),
    Login("consumer", "bob", "bob-demo"),
    Login("enterprise manager", "acme-manager", "acme-demo"),
    Login("enterprise sub-manager (Sales)", "acme-sales", "acme-demo"),
    Login("call-centre agent (admin)", "agent", "agent-demo"),
]


def _user(username: str, password: str, **fields) -> User:
    return User.objects.create_user(username=username, password=password, **fields)


def _tariffs() -> None:
    Tariff.objects.create(
        name="Data out of bundle",
        service=Service.DATA,
        price=Decimal("0.0100"),
        per_units=MB,
        increment=1024,
        is_default=True,
    )
    Tariff.objects.create(
        name="Voice out of bundle",
        service=Service.VOICE,
        price=Decimal("0.0500"),
        per_units=60,
        increment=1,
        is_default=True,
    )
    Tariff.objects.create(
        name="SMS out of bundle", service=Service.SMS, price=Decimal("0.1000"), per_units=1, is_default=True
    )
    Tariff.objects.create(
        name="Video out of bundle",
        service=Service.VIDEO,
        price=Decimal("0.0300"),
        per_units=60,
        increment=1,
        is_default=True,
    )


def _consumer_line(account: BillingAccount, msisdn: str, label: str, data_gb: int) -> None:
    line = line_create(billing_account=account, msisdn=msisdn, device_label=label)
    month = timezone.now() + timedelta(days=30)
    bucket_grant(line=line, name="Data", unit=Unit.BYTES, quantity=data_gb * GB, valid_until=month, reason="Demo plan")
    bucket_grant(line=line, name="Calls", unit=Unit.SECONDS, quantity=300 * 60, valid_until=month, reason="Demo plan")
    bucket_grant(line=line, name="Texts", unit=Unit.MESSAGES, quantity=100, valid_until=month, reason="Demo plan")


def _consumers() -> None:
    alice = _user("alice", "alice-demo", first_name="Alice", email="alice@example.com")
    customer = customer_create(name="Alice Jansen", email="alice@example.com", user=alice)
    account = billing_account_open(customer=customer, kind=BillingAccount.Kind.PREPAID, number="BA1000000001")
    money_post(billing_account=account, amount=Decimal("20"), kind=LedgerEntry.Kind.TOPUP, reason="Demo top-up")
    _consumer_line(account, "31612345001", "Alice's phone", data_gb=10)

    bob = _user("bob", "bob-demo", first_name="Bob", email="bob@example.com")
    customer = customer_create(name="Bob de Vries", email="bob@example.com", user=bob)
    account = billing_account_open(
        customer=customer, kind=BillingAccount.Kind.POSTPAID, credit_limit=Decimal("100"), number="BA1000000002"
    )
    money_balance_open(billing_account=account)
    _consumer_line(account, "31612345002", "Bob's phone", data_gb=20)
    _consumer_line(account, "31612345003", "Bob's tablet", data_gb=5)


def _enterprise() -> None:
    manager = _user("acme-manager", "acme-demo", first_name="Maria", email="telecom@acme.example")
    customer = customer_create(
        name="Acme Corporation", email="telecom@acme.example", kind=Customer.Kind.COMPANY, user=manager
    )
    account = billing_account_open(
        customer=customer, kind=BillingAccount.Kind.POSTPAID, credit_limit=Decimal("50000"), number="BA2000000001"
    )
    money_balance_open(billing_account=account)
    company = company_create(customer=customer, name="Acme Corporation")
    root = company_root(company=company)
    ManagerAssignment.objects.create(user=manager, node=root)
    number = 0
    for division_name in DIVISIONS:
        division = cost_centre_create(parent=root, name=division_name, kind=CostCentre.Kind.DIVISION)
        for department_name in DEPARTMENTS:
            department = cost_centre_create(
                parent=division, name=f"{division_name} {department_name}", kind=CostCentre.Kind.DEPARTMENT
            )
            for team_name in TEAMS:
                team = cost_centre_create(
                    parent=department, name=f"{department.name} {team_name}", kind=CostCentre.Kind.TEAM
                )
                for _ in range(LINES_PER_TEAM):
                    number += 1
                    line = line_create(
                        billing_account=account, msisdn=f"3165{number:07d}", device_label=f"Acme device {number}"
                    )
                    bucket_grant(
                        line=line,
                        name="Data",
                        unit=Unit.BYTES,
                        quantity=5 * GB,
                        valid_until=timezone.now() + timedelta(days=30),
                        reason="Demo plan",
                    )
                    cost_centre_create(parent=team, name=line.msisdn, kind=CostCentre.Kind.DEVICE, line=line)
    _enterprise_allowances(root)


def _enterprise_allowances(root: CostCentre) -> None:
    """What Acme bought (a pool per unit, for the month) and how it is split: limits on the
    divisions and a few teams, with different policies past them, and Sales given to a
    sub-manager."""
    month = timezone.now() + timedelta(days=30)
    for name, unit, quantity in [
        ("Company data pool", Unit.BYTES, 2000 * GB),
        ("Company voice and video pool", Unit.SECONDS, 50_000 * 60),
        ("Company SMS pool", Unit.MESSAGES, 20_000),
    ]:
        bucket_grant(cost_centre=root, name=name, unit=unit, quantity=quantity, valid_until=month, reason="Demo pool")
    divisions = {node.name: node for node in root.get_children()}
    block, throttle, overage = NodeLimit.OnExceed.BLOCK, NodeLimit.OnExceed.THROTTLE, NodeLimit.OnExceed.OVERAGE
    for node, unit, limit, on_exceed in [
        (divisions["Engineering"], Unit.BYTES, 800 * GB, throttle),
        (divisions["Engineering"], Unit.SECONDS, 15_000 * 60, block),
        (divisions["Operations"], Unit.BYTES, 500 * GB, block),
        (divisions["Sales"], Unit.BYTES, 600 * GB, overage),
        (divisions["Sales"], Unit.SECONDS, 25_000 * 60, overage),
        (divisions["Sales"], Unit.MESSAGES, 8_000, block),
    ]:
        terms = {"overage_price": Decimal("2.0000"), "overage_per_units": GB} if on_exceed == overage else {}
        if on_exceed == overage and unit == Unit.SECONDS:
            terms = {"overage_price": Decimal("0.0200"), "overage_per_units": 60}
        node_limit_set(node=node, unit=unit, limit=limit, on_exceed=on_exceed, **terms)
    for team in CostCentre.objects.filter(parent__parent=divisions["Sales"], kind=CostCentre.Kind.TEAM)[:2]:
        node_limit_set(node=team, unit=Unit.BYTES, limit=60 * GB, on_exceed=block)
    sales = _user("acme-sales", "acme-demo", first_name="Sven", email="sales-telecom@acme.example")
    ManagerAssignment.objects.create(user=sales, node=divisions["Sales"])


def _agent() -> None:
    group, _ = Group.objects.get_or_create(name=AGENT_GROUP)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label__in=["portal", "charging", "enterprise", "catalog"]).exclude(
            codename__startswith="delete_"
        )
    )
    agent = _user("agent", "agent-demo", first_name="Sam", is_staff=True)
    agent.groups.add(group)
    # Agents see failed logins and unlock an account by deleting its attempts (django-axes).
    unlock = ["view_accessattempt", "delete_accessattempt"]
    group.permissions.add(*Permission.objects.filter(content_type__app_label="axes", codename__in=unlock))


def mediation_key(*, valid_for: timedelta = timedelta(days=1)) -> str:
    """A new network key for the demo's mediation (the usage simulator), scoped to usage
    records and expiring after ``valid_for``: only its hash is kept, so each run gets its own."""
    issued = network_credential_issue(
        source=MEDIATION_SOURCE, scopes=[NetworkCredential.Scope.USAGE], expires_at=timezone.now() + valid_for
    )
    return issued.key


def demo_is_loaded() -> bool:
    return User.objects.filter(username="alice").exists()


@transaction.atomic
def demo_load() -> list[Login]:
    _tariffs()
    catalog_demo_load()
    _consumers()
    _enterprise()
    _agent()
    return DEMO_LOGINS
