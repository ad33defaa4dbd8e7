"""The charging benchmark's scenarios: a pooled company with limits at every level, online
sessions from many processes, offline batches, and the checks that nothing was overspent.
"""

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Sum
from django.utils import timezone

from charging.bench.harness import BenchCompany, RunResult, build_bench_company, run_concurrently
from charging.models import Bucket, NodeLimit, UsageEvent
from charging.offline import RecordStatus, charging_batch_size, usage_batch_ingest
from charging.online import session_start, session_terminate
from charging.periods import period_start
from charging.quota import quota_store_enabled, store
from charging.quota.log import log_apply, log_follow
from charging.quota.warm import company_warm
from charging.services import bucket_grant
from charging.units import Unit
from enterprise.models import CostCentre
from portal.celery import app as celery_app
from portal.processes import celery_worker, celery_workers_wait

MB = 1024**2


@dataclass
class PooledCompany:
    bench: BenchCompany
    pool: Bucket


def pooled_company_build(*, lines: int, fanout: tuple[int, ...], pool_units: int) -> PooledCompany:
    """The bench company with one data pool at the root and a blocking limit on every node:
    each level's limit is a share of its parent's, so limits bind at every level."""
    bench = build_bench_company(lines=lines, fanout=fanout)
    root = CostCentre.objects.get(pk=bench.root_id)
    pool = bucket_grant(cost_centre=root, name="Bench pool", unit=Unit.BYTES, quantity=pool_units)
    nodes = CostCentre.objects.filter(company=bench.company).values_list("pk", "level")
    widths = [*fanout, lines // _product(fanout)]
    limits = []
    # Limits in place since the month began, as in a company that has been charging all month
    # (a limit set up mid-month moves its start back once, on its first charge).
    month = period_start(period=NodeLimit.Period.MONTH, at=timezone.now())
    for node_id, level in nodes:
        share = pool_units
        for width in widths[:level]:
            share = share * 2 // width  # twice the fair share: siblings compete for the parent's limit
        limits.append(NodeLimit(node_id=node_id, unit=Unit.BYTES, limit=max(share, MB), period_start=month))
    NodeLimit.objects.bulk_create(limits, batch_size=2000)
    return PooledCompany(bench=bench, pool=pool)


def online_run(*, company: PooledCompany, workers: int, seconds: float, units: int) -> RunResult:
    """Each worker opens sessions on lines of its own, one after another: a grant, then a
    settlement of all it was granted. Every call (grant or settlement) is one operation.
    With the quota store on, its log is applied to the database all along, by a process of
    its own (as the worker would), so that work is part of what the machine does."""
    msisdns = company.bench.msisdns
    granted: dict[int, int] = {}  # per worker process: what its open session was granted

    def operation(worker: int, op: int) -> int:
        msisdn = msisdns[(worker + workers * (op // 2)) % len(msisdns)]
        session_id = f"bench-{worker}-{op // 2}"
        if op % 2 == 0:
            answer = session_start(session_id=session_id, msisdn=msisdn, service="data", requested_units=units)
            granted[worker] = answer["granted_units"]
            return granted[worker]
        session_terminate(session_id=session_id, request_number=1, used_units=granted.pop(worker, 0))
        return 0

    if not quota_store_enabled():
        return run_concurrently(operation=operation, workers=workers, seconds=seconds)
    with LogApplier() as applier:
        result = run_concurrently(operation=operation, workers=workers, seconds=seconds)
    # Until the last settlement is in the ledger: the rate the engine sustains, not a burst.
    result.seconds += applier.catch_up_seconds
    result.log_backlog = applier.backlog
    result.catch_up_seconds = applier.catch_up_seconds
    return result


def quota_store_warm(*, company: PooledCompany) -> tuple[int, int]:
    """What the engine loads when it starts: the lines' profiles and slices of every counter."""
    return company_warm(company=company.bench.company, service="data", wanted=MB)


class LogApplier:
    """Applies the quota store's log from a process of its own while the block runs, as a
    deployment's follower does (``log_follow``, at a lower CPU priority); on exit,
    notes how many entries were still waiting (``backlog``) and how long applying them took."""

    def __enter__(self):
        connections.close_all()  # the child opens its own
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._process = context.Process(target=_apply_until, args=(self._stop,))
        self._process.start()
        return self

    def kill(self) -> None:
        """Kills the applier at once (SIGKILL), as a crash would; leaving then applies the rest here."""
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.join(timeout=10)

    def __exit__(self, *exc):
        started = time.perf_counter()
        self.backlog = store.client().xlen(store.log_key())
        if self._process.is_alive():  # (a killed one may have died holding the stop event's lock)
            self._stop.set()
        self._process.join(timeout=120)
        log_apply()
        self.catch_up_seconds = time.perf_counter() - started
        return False


def _apply_until(stop) -> None:
    log_follow(stop=stop)
    connections.close_all()


def overspend(*, company: PooledCompany) -> int:
    """Units counted past any limit of the company, plus any pool drawn below zero."""
    past_limits = (
        NodeLimit.objects.filter(node__company=company.bench.company, used__gt=F("limit"))
        .annotate(past=F("used") - F("limit"))
        .aggregate(total=Sum("past"))["total"]
        or 0
    )
    pool = Bucket.objects.get(pk=company.pool.pk)
    return past_limits + max(0, -pool.remaining)


def offline_records(*, company: PooledCompany, count: int, prefix: str, quantity: int) -> list[dict]:
    msisdns = company.bench.msisdns
    return [
        {"external_id": f"{prefix}-{n}", "msisdn": msisdns[n % len(msisdns)], "service": "data", "quantity": quantity}
        for n in range(count)
    ]


@dataclass
class OfflineResult:
    records: int
    seconds: float
    workers: int  # Celery worker processes that charged them (0: charged in this process)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def offline_run(*, company: PooledCompany, count: int, batch: int, workers: int, prefix: str) -> OfflineResult:
    """Posts ``count`` records in batches, as mediation would, and times them until every one
    is charged: by ``workers`` real Celery worker processes while the posting goes on (with
    Redis as the broker), else by the tasks run in this process after each post."""
    records = offline_records(company=company, count=count, prefix=prefix, quantity=MB)
    warm_up = offline_records(company=company, count=10, prefix="warm-up", quantity=MB)
    with charging_workers(workers if settings.REDIS_URL else 0) as started:
        # Every worker started (none still loading while the clock runs), and the charging path
        # warm once these are charged.
        celery_workers_wait(started)
        _wait_until_charged(_post(warm_up, batch=batch), workers=started)
        began = time.perf_counter()
        _wait_until_charged(_post(records, batch=batch), workers=started)
        seconds = time.perf_counter() - began
    return OfflineResult(records=charged_count(prefix=prefix), seconds=seconds, workers=len(started))


def _post(records: list[dict], *, batch: int) -> list[int]:
    """Returns one record of each charging task queued: a task charges its records together."""
    size = charging_batch_size()
    queued = []
    for offset in range(0, len(records), batch):
        with transaction.atomic():  # the charging tasks are queued when the post commits
            result = usage_batch_ingest(payloads=records[offset : offset + batch], source="bench")
        accepted = [o.event_id for o in result.outcomes if o.status == RecordStatus.ACCEPTED]
        queued.extend(accepted[::size])
    return queued


@contextmanager
def charging_workers(count: int) -> Iterator[list]:
    """``count`` Celery worker processes on a queue of this run's own (none: tasks run here)."""
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_default_queue)
    celery_app.conf.task_always_eager = count == 0
    celery_app.conf.task_default_queue = f"bench-{os.getpid()}"
    env = {
        "CHARGING_QUOTA_STORE": "1" if quota_store_enabled() else "0",
        "CHARGING_QUOTA_PREFIX": settings.CHARGING_QUOTA_PREFIX,
        "CHARGING_QUOTA_VOLATILE_REDIS": "1" if settings.CHARGING_QUOTA_VOLATILE_REDIS else "0",
    }
    try:
        with ExitStack() as stack:
            yield [
                stack.enter_context(celery_worker(queue=celery_app.conf.task_default_queue, env=env))
                for _ in range(count)
            ]
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous


def _wait_until_charged(queued: list[int], *, workers: list, timeout: float = 300) -> None:
    """Until the tasks of ``queued`` (a record of each) have charged them (at once when they
    were charged here). A handful of keys looked up: no status is indexed."""
    deadline = time.monotonic() + timeout
    waiting = queued
    while waiting := list(
        UsageEvent.objects.filter(pk__any=waiting, status=UsageEvent.Status.RECEIVED).values_list("pk", flat=True)
    ):
        stopped = [worker for worker in workers if worker.poll() is not None]
        if stopped:
            raise RuntimeError(f"a charging worker stopped:\n{stopped[0].stdout.read()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the offline records were not all charged in {timeout:.0f} s")
        time.sleep(0.005)


def charged_count(*, prefix: str) -> int:
    return UsageEvent.objects.filter(external_id__startswith=f"{prefix}-", status=UsageEvent.Status.CHARGED).count()


def _product(values: tuple[int, ...]) -> int:
    result = 1
    for value in values:
        result *= value
    return result
