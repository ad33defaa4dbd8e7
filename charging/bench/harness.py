"""Building blocks of the charging benchmark: a big company, the hot-row baseline, and a
runner that drives an operation from many processes at once and measures it.

Figures are only ever compared with a baseline measured in the same run, because the
machines this runs on are shared and noisy.
"""

import multiprocessing
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, connections, transaction

from enterprise.models import Company, CostCentre
from enterprise.selectors import cost_centre_tree_is_valid
from portal.models import BillingAccount, Customer, Line

KINDS_BY_DEPTH = [
    CostCentre.Kind.COMPANY,
    CostCentre.Kind.DIVISION,
    CostCentre.Kind.DEPARTMENT,
    CostCentre.Kind.TEAM,
    CostCentre.Kind.DEVICE,
]


@dataclass
class BenchCompany:
    company: Company
    root_id: int
    billing_account_id: int
    line_ids: list[int]
    msisdns: list[str]


@dataclass
class RunResult:
    ops: int
    seconds: float
    errors: int
    units: int
    latencies_ms: list[float] = field(repr=False)
    first_error: str = ""
    log_backlog: int = 0  # quota store entries not yet applied when the run ended
    catch_up_seconds: float = 0.0  # and how long applying them took (counted in ``seconds``)

    @property
    def ops_per_second(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return _percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return _percentile(self.latencies_ms, 99)


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


@transaction.atomic
def build_bench_company(
    *, lines: int = 10_000, fanout: tuple[int, ...] = (10, 10, 10), name: str = "Bench"
) -> BenchCompany:
    """A company whose cost-centre tree is root -> fanout levels -> one device node per line.

    Rows are bulk-inserted with their nested-set numbers computed here (inserting ten
    thousand nodes one by one through django-mptt would renumber the tree each time).
    """
    leaves = 1
    for width in fanout:
        leaves *= width
    if lines % leaves:
        raise ValueError(f"{lines} lines do not spread evenly over {leaves} leaf cost centres")
    per_leaf = lines // leaves

    customer = Customer.objects.create(name=f"{name} company", kind=Customer.Kind.COMPANY)
    account = BillingAccount.objects.create(
        customer=customer,
        number=f"BENCH{customer.pk:010d}",
        kind=BillingAccount.Kind.POSTPAID,
        credit_limit=Decimal("100000000"),
    )
    company = Company.objects.create(customer=customer, name=f"{name} company")
    prefix = f"9{customer.pk % 1000:03d}"
    created_lines = Line.objects.bulk_create(
        Line(billing_account=account, msisdn=f"{prefix}{n:08d}", device_label=f"{name} device {n}")
        for n in range(lines)
    )

    # Depth-first numbering of the whole tree: (depth, name, line index or None, lft, rght, parent key).
    nodes: list[dict] = []
    counter = 0

    def visit(depth: int, label: str, parent_key: int | None, line_index: int | None, path: tuple[int, ...]) -> None:
        nonlocal counter
        counter += 1
        node = {"depth": depth, "name": label, "parent": parent_key, "line": line_index, "lft": counter}
        key = len(nodes)
        nodes.append(node)
        if depth < len(fanout):
            for child in range(fanout[depth]):
                visit(depth + 1, f"{label}.{child + 1}", key, None, (*path, child))
        elif depth == len(fanout):
            leaf_index = 0
            for width, position in zip(fanout, path, strict=True):
                leaf_index = leaf_index * width + position
            for offset in range(per_leaf):
                index = leaf_index * per_leaf + offset
                visit(depth + 1, created_lines[index].msisdn, key, index, path)
        counter += 1
        node["rght"] = counter

    visit(0, f"{name} company", None, None, ())
    tree_id = (CostCentre.objects.order_by("-tree_id").values_list("tree_id", flat=True).first() or 0) + 1
    pks: dict[int, int] = {}
    for depth in range(len(fanout) + 2):
        level = [(key, node) for key, node in enumerate(nodes) if node["depth"] == depth]
        created = CostCentre.objects.bulk_create(
            CostCentre(
                company=company,
                parent_id=pks[node["parent"]] if node["parent"] is not None else None,
                name=node["name"],
                kind=KINDS_BY_DEPTH[min(depth, len(KINDS_BY_DEPTH) - 1)] if depth <= len(fanout) else "device",
                line=created_lines[node["line"]] if node["line"] is not None else None,
                lft=node["lft"],
                rght=node["rght"],
                tree_id=tree_id,
                level=depth,
            )
            for _, node in level
        )
        for (key, _), row in zip(level, created, strict=True):
            pks[key] = row.pk
    if not cost_centre_tree_is_valid(company=company):
        raise AssertionError("the bench company's tree numbering is inconsistent")
    return BenchCompany(
        company=company,
        root_id=pks[0],
        billing_account_id=account.pk,
        line_ids=[line.pk for line in created_lines],
        msisdns=[line.msisdn for line in created_lines],
    )


def hot_row_baseline(*, connections_count: int = 16, seconds: float = 5.0) -> float:
    """Conditional single-row UPDATEs per second from many connections, each its own durable
    commit: the ceiling of a design that updates one shared row per event."""
    if connection.vendor != "postgresql":
        raise RuntimeError("the hot-row baseline is measured on PostgreSQL")
    import psycopg2

    params = connection.get_connection_params()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_hot_row")
        cursor.execute("CREATE TABLE bench_hot_row (id integer PRIMARY KEY, remaining bigint NOT NULL)")
        cursor.execute("INSERT INTO bench_hot_row VALUES (1, 9223372036854775000)")
    counts = [0] * connections_count
    barrier = threading.Barrier(connections_count + 1)
    deadline = [0.0]

    def hammer(index: int) -> None:
        conn = psycopg2.connect(**params)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = on")
            barrier.wait()
            while time.perf_counter() < deadline[0]:
                cur.execute("UPDATE bench_hot_row SET remaining = remaining - 1 WHERE id = 1 AND remaining >= 1")
                counts[index] += 1
        conn.close()

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(connections_count)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_hot_row")
    return sum(counts) / elapsed


def _worker(operation, index, seconds, barrier, results) -> None:
    latencies: list[float] = []
    ops = errors = units = 0
    first_error = ""
    barrier.wait()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            units += operation(index, ops + errors)
            ops += 1
            latencies.append((time.perf_counter() - started) * 1000)
        except Exception:
            errors += 1
            first_error = first_error or traceback.format_exc(limit=3)
    connections.close_all()
    results.put((ops, errors, units, latencies, first_error))


def run_concurrently(*, operation: Callable[[int, int], int], workers: int = 16, seconds: float = 5.0) -> RunResult:
    """Runs ``operation(worker_index, op_index) -> units`` in ``workers`` forked processes
    for ``seconds`` and gathers throughput, latency percentiles, errors and units."""
    connections.close_all()  # children open their own connections
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(operation, index, seconds, barrier, results)) for index in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    gathered = [results.get(timeout=seconds + 120) for _ in processes]
    elapsed = max(time.perf_counter() - started, seconds)
    for process in processes:
        process.join(timeout=30)
    latencies = sorted(latency for result in gathered for latency in result[3])
    return RunResult(
        ops=sum(r[0] for r in gathered),
        seconds=elapsed,
        errors=sum(r[1] for r in gathered),
        units=sum(r[2] for r in gathered),
        latencies_ms=latencies,
        first_error=next((r[4] for r in gathered if r[4]), ""),
    )
