"""The live bench's people: the bench company with a consumer on each of many lines and
managers on nodes of every level, each with a session a websocket can present."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.test import Client
from django.utils import timezone

from charging.bench.harness import BenchCompany, build_bench_company
from charging.models import Bucket, NodeLimit
from charging.periods import period_start
from charging.services import bucket_grant
from charging.units import Unit
from enterprise.models import CostCentre, ManagerAssignment
from portal.bench.sockets import Watcher
from portal.models import BillingAccount, Customer, Line

MB = 1024**2
PB = 1024**5


@dataclass
class LiveCompany:
    bench: BenchCompany
    consumers: list[Watcher]
    managers: list[Watcher]
    paths: dict[int, list[int]]  # every line's cost centres above its device, root first
    allowance_of_line: dict[int, int]  # the consumers' lines: their allowance
    msisdn_of: dict[int, str]


def live_company_build(*, lines: int, fanout: tuple[int, ...], consumers: int, managers: int) -> LiveCompany:
    """The bench company drawing on a pool at its root, with limits on every node above the
    devices (far from binding, so every charge moves them), ``consumers`` of its lines moved to
    people's own accounts with an allowance each (drawn before the pool), and ``managers``
    managers: one on the root and the rest spread over the other levels."""
    bench = build_bench_company(lines=lines, fanout=fanout, name="Live")
    root = CostCentre.objects.get(pk=bench.root_id)
    bucket_grant(cost_centre=root, name="Live pool", unit=Unit.BYTES, quantity=PB, priority=200)
    nodes = list(
        CostCentre.objects.filter(company=bench.company)
        .exclude(kind=CostCentre.Kind.DEVICE)
        .values_list("pk", "parent_id", "level")
    )
    month = period_start(period=NodeLimit.Period.MONTH, at=timezone.now())
    NodeLimit.objects.bulk_create(
        [NodeLimit(node_id=pk, unit=Unit.BYTES, limit=PB, period_start=month) for pk, _, _ in nodes], batch_size=2000
    )
    paths = _paths(bench, nodes)
    chosen = bench.line_ids[:: len(bench.line_ids) // consumers][:consumers]  # spread over the tree
    users, allowances = _consumers_own(chosen)
    cookies = _sessions(users)
    consumer_watchers = [
        Watcher(cookie=cookie, kind="line", key=allowances[line_id], group=f"line.{line_id}")
        for cookie, line_id in zip(cookies, chosen, strict=True)
    ]
    managed = _spread(nodes, managers)
    manager_cookies = _sessions(_managers_on(managed))
    manager_watchers = [
        Watcher(cookie=cookie, kind="node", key=node_id, group=f"node.{node_id}")
        for cookie, node_id in zip(manager_cookies, managed, strict=True)
    ]
    return LiveCompany(
        bench=bench,
        consumers=consumer_watchers,
        managers=manager_watchers,
        paths=paths,
        allowance_of_line=allowances,
        msisdn_of=dict(zip(bench.line_ids, bench.msisdns, strict=True)),
    )


def _paths(bench: BenchCompany, nodes: list[tuple[int, int | None, int]]) -> dict[int, list[int]]:
    parent = {pk: parent_id for pk, parent_id, _ in nodes}
    devices = CostCentre.objects.filter(company=bench.company, kind=CostCentre.Kind.DEVICE).values_list(
        "line_id", "parent_id"
    )
    paths = {}
    for line_id, team in devices:
        path, node = [], team
        while node is not None:
            path.append(node)
            node = parent[node]
        paths[line_id] = path[::-1]
    return paths


def _spread(nodes: list[tuple[int, int | None, int]], count: int) -> list[int]:
    """The root, then nodes of each level below it in turn, so every level has managers."""
    by_level: dict[int, list[int]] = {}
    for pk, _, level in sorted(nodes):
        by_level.setdefault(level, []).append(pk)
    chosen = [by_level[0][0]]
    levels = sorted(level for level in by_level if level > 0)
    turn = 0
    while len(chosen) < count:
        level = levels[turn % len(levels)]
        candidates = [pk for pk in by_level[level] if pk not in chosen]
        if candidates:
            chosen.append(candidates[len(chosen) * 7 % len(candidates)])
        turn += 1
    return chosen


@transaction.atomic
def _consumers_own(line_ids: list[int]) -> tuple[list, dict[int, int]]:
    """Moves each line to a person of its own (their account pays), with a large allowance
    that their usage draws on first; returns the people, and each line's allowance."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"live-consumer-{i}", password=make_password(None)) for i in range(len(line_ids))
    )
    customers = Customer.objects.bulk_create(
        Customer(name=f"Live consumer {i}", kind=Customer.Kind.PERSON, user=user) for i, user in enumerate(users)
    )
    accounts = BillingAccount.objects.bulk_create(
        BillingAccount(customer=customer, number=f"LIVE{customer.pk:010d}", kind=BillingAccount.Kind.PREPAID)
        for customer in customers
    )
    lines = Line.objects.in_bulk(line_ids)
    for line_id, account in zip(line_ids, accounts, strict=True):
        lines[line_id].billing_account = account
    Line.objects.bulk_update(lines.values(), ["billing_account"], batch_size=2000)
    allowances = {
        line_id: bucket_grant(
            line=lines[line_id], name="Live allowance", unit=Unit.BYTES, quantity=PB // 1024, priority=10
        ).pk
        for line_id in line_ids
    }
    return users, allowances


def _managers_on(node_ids: list[int]) -> list:
    model = get_user_model()
    users = model.objects.bulk_create(
        model(username=f"live-manager-{i}", password=make_password(None)) for i in range(len(node_ids))
    )
    ManagerAssignment.objects.bulk_create(
        ManagerAssignment(user=user, node_id=node) for user, node in zip(users, node_ids, strict=True)
    )
    return users


def _sessions(users: list) -> list[str]:
    """A logged-in session per user: each one's Cookie header."""
    cookies = []
    for user in users:
        client = Client()
        client.force_login(user)
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")
    return cookies


def allowance_remaining(bucket_ids: list[int]) -> dict[int, int]:
    return dict(Bucket.objects.filter(pk__in=bucket_ids).values_list("pk", "remaining"))


def limits_used(node_ids: list[int]) -> dict[int, int]:
    return dict(NodeLimit.objects.filter(node_id__in=node_ids, unit=Unit.BYTES).values_list("node_id", "used"))
