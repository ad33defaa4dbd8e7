"""Fault drills: real failures of the parts the engine runs on, then a count of what was lost.

Each drill charges real usage on the drills' own PostgreSQL and Redis, breaks something
(a worker, Redis, PostgreSQL, the log follower, a double delivery) in the middle, lets the
portal recover as it would in production (plus what the README's runbook tells an operator
to do), and then counts: records neither charged nor rejected (lost), units charged more
than once (doubled), units past a limit or below an allowance's zero (overspend), and
whether every balance equals its ledger and every quota-store slice is accounted for.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connections
from django.db.models import Sum
from django.test import override_settings
from redis.exceptions import RedisError

from charging.bench.scenarios import (
    LogApplier,
    PooledCompany,
    charging_workers,
    offline_records,
    overspend,
    pooled_company_build,
    quota_store_warm,
)
from charging.faults.servers import PrivatePostgres, PrivateRedis
from charging.ledger import ledger_mismatches
from charging.models import Bucket, ChargingSession, LedgerEntry, UsageEvent
from charging.offline import RecordStatus, usage_backlog_queue, usage_batch_ingest, usage_events_requeue
from charging.online import session_start, session_terminate
from charging.quota.log import log_apply, log_apply_now
from charging.quota.slices import slices_mismatches, slices_repair, slices_return
from charging.requests import ChargingError
from portal.processes import celery_workers_wait

MB = 1 << 20


@dataclass
class Outcome:
    name: str
    lost: int
    doubled: int
    overspend: int
    ledger_ok: bool
    slices_ok: bool = True

    @property
    def ok(self) -> bool:
        return not (self.lost or self.doubled or self.overspend) and self.ledger_ok and self.slices_ok

    def line(self) -> str:
        ledger = "ok" if self.ledger_ok else "MISMATCH"
        slices = "ok" if self.slices_ok else "MISMATCH"
        return (
            f"drill {self.name}: lost={self.lost} doubled={self.doubled} overspend={self.overspend}"
            f" ledger={ledger} slices={slices}"
        )


@dataclass
class Drills:
    postgres: PrivatePostgres
    redis: PrivateRedis
    company: PooledCompany | None = None

    def setup(self) -> None:
        self.company = pooled_company_build(lines=200, fanout=(2, 2), pool_units=1 << 50)

    # --- Offline ---------------------------------------------------------------------------------

    def worker_killed_mid_batch(self) -> Outcome:
        """A worker is killed (SIGKILL) while it charges; another comes up."""
        records = offline_records(company=self.company, count=8_000, prefix="killed", quantity=MB)
        with charging_workers(1) as (first,):
            celery_workers_wait([first])
            self._post(records)
            self._until(lambda: self._charged("killed") > 0, seconds=120)
            first.kill()
            first.wait(timeout=10)
        with charging_workers(1) as (second,):
            celery_workers_wait([second])
            self._until(lambda: self._waiting("killed") == 0, seconds=120)
        return self._offline_outcome("worker-killed-mid-batch", "killed", records)

    def postgres_crash_mid_batch(self) -> Outcome:
        """PostgreSQL is killed while a worker charges, and comes back a few seconds later."""
        records = offline_records(company=self.company, count=8_000, prefix="pgcrash", quantity=MB)
        with charging_workers(1) as workers:
            celery_workers_wait(workers)
            self._post(records)
            self._until(lambda: self._charged("pgcrash") > 0, seconds=120)
            self.postgres.crash()
            connections.close_all()
            time.sleep(3)
            self.postgres.start()
            self._until(lambda: self._waiting("pgcrash") == 0, seconds=180)
        return self._offline_outcome("postgres-crash-mid-batch", "pgcrash", records)

    def postgres_crash_between_batches(self) -> Outcome:
        """PostgreSQL is killed between two posts; what was posted before is charged once."""
        records = offline_records(company=self.company, count=4_000, prefix="pgbetween", quantity=MB)
        with charging_workers(1) as workers:
            celery_workers_wait(workers)
            self._post(records[:2_000])
            self._until(lambda: self._waiting("pgbetween") == 0, seconds=120)
            self.postgres.crash()
            connections.close_all()
            self.postgres.start()
            self._post(records[2_000:])
            self._until(lambda: self._waiting("pgbetween") == 0, seconds=120)
        return self._offline_outcome("postgres-crash-between-batches", "pgbetween", records)

    def broker_down_while_posting(self) -> Outcome:
        """Redis (the broker) is down while records are posted; it comes back."""
        records = offline_records(company=self.company, count=4_000, prefix="brokerdown", quantity=MB)
        with charging_workers(1) as workers:
            celery_workers_wait(workers)
            self.redis.crash()
            self._post(records)  # stored; their tasks wait in the backlog
            self.redis.start()
            usage_backlog_queue()  # what beat does every few seconds
            self._until(lambda: self._waiting("brokerdown") == 0, seconds=120)
        return self._offline_outcome("broker-down-while-posting", "brokerdown", records)

    def payload_delivered_twice_at_once(self) -> Outcome:
        """The same batch is posted twice at the same moment, in opposite orders."""
        records = offline_records(company=self.company, count=4_000, prefix="twice", quantity=MB)
        with charging_workers(1) as workers:
            celery_workers_wait(workers)
            both = [threading.Thread(target=self._post, args=(batch,)) for batch in (records, records[::-1])]
            for thread in both:
                thread.start()
            for thread in both:
                thread.join(timeout=120)
            self._until(lambda: self._waiting("twice") == 0, seconds=120)
        return self._offline_outcome("payload-delivered-twice-at-once", "twice", records)

    # --- Online, through the quota store ----------------------------------------------------------

    def redis_restarted_with_the_quota_store_on(self) -> Outcome:
        """Redis is killed and restarted from its append-only file while sessions run."""
        with self._quota_store():
            used = self._sessions("restart", count=300, during=lambda n: n == 150 and self._redis_restart())
            self._settle()
            return self._online_outcome("redis-restarted", "restart", used)

    def redis_rolled_back_to_an_older_file(self) -> Outcome:
        """Redis comes back from an older append-only file, as after a host crash that lost its
        last writes: the log was applied only as far as Redis had it on disk."""
        with self._quota_store():
            used = self._sessions("before", count=150)
            self._settle()
            snapshot = self.redis.aof_snapshot()
            self._sessions("forgotten", count=20)  # settled in Redis after the snapshot: lost with it
            log_apply()  # beat's apply comes round: nothing this recent is on disk for sure
            self.redis.crash()
            self.redis.restore(snapshot)
            self.redis.start()
            self._settle()  # quota_store recover, as the runbook says
            used.update(self._sessions("after", count=150))
            self._settle()
            forgotten = ChargingSession.objects.filter(session_id__startswith="forgotten-").count()
            outcome = self._online_outcome("redis-rolled-back", ("before", "after"), used)
            outcome.doubled += forgotten  # none may reach the database: Redis forgot them
            return outcome

    def log_follower_killed(self) -> Outcome:
        """The process applying the quota store's log is killed mid-run; another takes over."""
        with self._quota_store():
            with LogApplier() as follower:
                used = self._sessions("follower", count=150)
                follower.kill()
            with LogApplier():
                used.update(self._sessions("follower2", count=150))
            self._settle()
            return self._online_outcome("log-follower-killed", ("follower", "follower2"), used)

    # --- Helpers ------------------------------------------------------------------------------------

    def _post(self, records: list[dict]) -> None:
        for offset in range(0, len(records), 4_000):
            result = usage_batch_ingest(payloads=records[offset : offset + 4_000], source="drills")
            if any(outcome.status == RecordStatus.REJECTED for outcome in result.outcomes):
                raise RuntimeError("a drill record was refused")

    def _charged(self, prefix: str) -> int:
        return UsageEvent.objects.filter(external_id__startswith=f"{prefix}-", status=UsageEvent.Status.CHARGED).count()

    def _waiting(self, prefix: str) -> int:
        waiting = UsageEvent.objects.filter(external_id__startswith=f"{prefix}-", status=UsageEvent.Status.RECEIVED)
        return waiting.count()

    def _until(self, condition: Callable[[], bool], *, seconds: float) -> None:
        """Until ``condition()`` holds or ``seconds`` pass (what still waits then counts as
        lost). Halfway, the operator's step of the runbook: ``usage_requeue``, once."""
        deadline = time.monotonic() + seconds
        requeued = False
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
                if not requeued and time.monotonic() > deadline - seconds / 2:
                    usage_events_requeue(after=timedelta(0))
                    requeued = True
            except (DatabaseError, InterfaceError):  # the database is coming back
                connections.close_all()
            time.sleep(0.2)

    def _offline_outcome(self, name: str, prefix: str, records: list[dict]) -> Outcome:
        events = UsageEvent.objects.filter(external_id__startswith=f"{prefix}-")
        stored = events.count()
        charged = events.filter(status=UsageEvent.Status.CHARGED)
        charged_units = charged.aggregate(total=Sum("quantity"))["total"] or 0
        drawn = -(
            LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE, reference__in=_references(charged)).aggregate(
                total=Sum("units")
            )["total"]
            or 0
        )
        lost = (len({r["external_id"] for r in records}) - stored) + events.filter(
            status=UsageEvent.Status.RECEIVED
        ).count()
        return Outcome(
            name,
            lost=lost,
            doubled=max(0, drawn - charged_units) // MB,
            overspend=overspend(company=self.company),
            ledger_ok=ledger_mismatches() == [],
        )

    def _quota_store(self):
        return override_settings(CHARGING_QUOTA_STORE=True, CHARGING_QUOTA_PREFIX="drills")

    def _sessions(self, prefix: str, *, count: int, during: Callable[[int], object] = lambda n: None) -> dict:
        """Starts and ends ``count`` sessions one after another; returns what each settled
        (by session id) among those the store answered."""
        if not Bucket.objects.filter(pk=self.company.pool.pk, in_store__gt=0).exists():
            quota_store_warm(company=self.company)
        used = {}
        msisdns = self.company.bench.msisdns
        for n in range(count):
            during(n)
            session_id = f"{prefix}-{n}"
            msisdn = msisdns[n % len(msisdns)]
            try:
                session_start(session_id=session_id, msisdn=msisdn, service="data", requested_units=2 * MB)
                session_terminate(session_id=session_id, request_number=1, used_units=MB)
            except (ChargingError, RedisError):
                continue  # refused while Redis was away: not charged, as the network was told
            used[session_id] = MB
        return used

    def _redis_restart(self) -> None:
        self.redis.crash()
        self.redis.start()

    def _settle(self) -> None:
        """What the runbook has an operator do with sessions stopped: apply, return, repair."""
        log_apply_now()
        slices_return()
        slices_repair()

    def _online_outcome(self, name: str, prefixes, used: dict) -> Outcome:
        prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
        applied = {}
        for prefix in prefixes:
            applied.update(
                ChargingSession.objects.filter(session_id__startswith=f"{prefix}-").values_list(
                    "session_id", "used_units"
                )
            )
        lost = sum(1 for session_id in used if session_id not in applied)
        doubled = sum(1 for session_id, units in applied.items() if units > used.get(session_id, 0))
        return Outcome(
            name,
            lost=lost,
            doubled=doubled,
            overspend=overspend(company=self.company),
            ledger_ok=ledger_mismatches() == [],
            slices_ok=slices_mismatches() == [],
        )


def _references(charged) -> list[str]:
    return list(charged.values_list("ledger_reference", flat=True).distinct())


def drills_run(*, postgres: PrivatePostgres, redis: PrivateRedis, report: Callable[[str], None]) -> list[Outcome]:
    if redis.url != settings.REDIS_URL:
        raise RuntimeError("the drills run on their own Redis only")
    drills = Drills(postgres=postgres, redis=redis)
    drills.setup()
    outcomes = []
    for drill in (
        drills.worker_killed_mid_batch,
        drills.postgres_crash_between_batches,
        drills.postgres_crash_mid_batch,
        drills.broker_down_while_posting,
        drills.payload_delivered_twice_at_once,
        drills.redis_restarted_with_the_quota_store_on,
        drills.redis_rolled_back_to_an_older_file,
        drills.log_follower_killed,
    ):
        outcome = drill()
        report(outcome.line())
        outcomes.append(outcome)
    return outcomes
