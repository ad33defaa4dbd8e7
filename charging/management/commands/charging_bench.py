"""The charging benchmark: online and offline charging against the ceiling of a design that
updates one shared row per event, all measured in the same run on the same machine.

Runs in a throw-away database of its own (created and dropped like the test database), so
it never touches the portal's data. Needs PostgreSQL (DATABASE_URL).
"""

import os
import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import override_settings

from charging.bench.harness import hot_row_baseline
from charging.bench.scenarios import (
    MB,
    offline_run,
    online_run,
    overspend,
    pooled_company_build,
    quota_store_warm,
)
from charging.ledger import ledger_mismatches
from charging.quota import quota_store_enabled, store
from charging.quota.slices import slices_mismatches, slices_return
from charging.quota.store import quota_store_clear
from portal.heap import startup_heap_tune


class Command(BaseCommand):
    help = "Measures online and offline charging against the hot-row baseline; prints one summary line last."

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=10_000)
        parser.add_argument("--fanout", default="10,10,10", help="Cost centres per level below the root.")
        parser.add_argument("--workers", type=int, default=16)
        parser.add_argument("--seconds", type=float, default=5.0)
        parser.add_argument(
            "--offline-records",
            type=int,
            default=60_000,
            help="Enough for a sustained rate: filling and draining the pipeline of posts and workers is a fixed cost.",
        )
        parser.add_argument(
            "--offline-workers",
            type=int,
            default=2,
            help="Celery worker processes charging the posted batches (needs REDIS_URL; else tasks run in-process).",
        )
        parser.add_argument(
            "--batch", type=int, default=None, help="Records per posted batch (default: CHARGING_BATCH_SIZE)."
        )
        parser.add_argument("--keep-db", action="store_true", help="Keep the bench database afterwards.")
        parser.add_argument(
            "--no-quota-store",
            action="store_true",
            help="Charge online sessions in the database even when REDIS_URL is set.",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("the charging benchmark runs on PostgreSQL: set DATABASE_URL")
        fanout = tuple(int(width) for width in options["fanout"].split(","))
        creation = connection.creation
        old_name = connection.settings_dict["NAME"]
        creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        quota = bool(settings.REDIS_URL) and not options["no_quota_store"]
        try:
            # A Redis with no append-only file is measured as it is, and the bench says so.
            with override_settings(
                CHARGING_QUOTA_STORE=quota,
                CHARGING_QUOTA_PREFIX=f"bench-{os.getpid()}",
                CHARGING_QUOTA_VOLATILE_REDIS=True,
            ):
                try:
                    self._run(options, fanout)
                finally:
                    if quota:
                        quota_store_clear()
        finally:
            if not options["keep_db"]:
                creation.destroy_test_db(old_name, verbosity=0)

    def _run(self, options, fanout):
        say = self.stdout.write
        started = time.perf_counter()
        company = pooled_company_build(lines=options["lines"], fanout=fanout, pool_units=1024 * 1024 * MB)
        took = time.perf_counter() - started
        say(f"built a company of {options['lines']:,} lines, limits on every node, in {took:.1f} s")
        # From here on this process, and those it forks, charge as the portal's server and
        # workers would; like them (``portal.heap``), they keep what they hold from before
        # (here: the company they charge) out of the garbage collector's walks, and collect
        # young objects less often.
        startup_heap_tune()

        if quota_store_enabled():
            started = time.perf_counter()
            profiles, slices = quota_store_warm(company=company)
            took = time.perf_counter() - started
            say(f"quota store: {profiles:,} line profiles and {slices:,} slices loaded in {took:.1f} s")
            say(f"quota store: {_redis_durability()}")
        else:
            say("quota store off (no REDIS_URL, or --no-quota-store): sessions are charged in the database")

        baseline = {"connections_count": options["workers"], "seconds": options["seconds"]}
        hot_row_before = hot_row_baseline(**baseline)
        say(f"hot-row baseline: {hot_row_before:,.0f} conditional one-row updates/s, {options['workers']} connections")

        online = online_run(company=company, workers=options["workers"], seconds=options["seconds"], units=MB)
        say(
            f"online: {online.ops_per_second:,.0f} grants+settlements/s, p50 {online.p50_ms:.2f} ms,"
            f" p99 {online.p99_ms:.2f} ms, errors {online.errors}"
        )
        if online.first_error:
            say(f"first online error:\n{online.first_error}")
        if quota_store_enabled():
            unaccounted = slices_mismatches()
            returned = slices_return()
            say(
                f"quota store: {online.log_backlog:,} log entries were waiting when the run ended, applied in"
                f" {online.catch_up_seconds:.1f} s (counted in the rate above); {len(returned):,} slices handed back;"
                f" {len(unaccounted)} slices not accounted for"
            )
            if unaccounted:
                raise CommandError(f"the quota store lost track of slices: {unaccounted[:3]}")

        offline_rate = self._offline(company, options)
        say(f"offline: {offline_rate:,.0f} usage records/s through the batch path")

        # Measured again after the runs: on a shared machine the speed drifts within minutes,
        # and the mean of both ends compares the runs with the machine they ran on.
        hot_row_after = hot_row_baseline(**baseline)
        hot_row = (hot_row_before + hot_row_after) / 2
        say(f"hot-row baseline again: {hot_row_after:,.0f}/s; compared with their mean, {hot_row:,.0f}/s")

        spent_past = overspend(company=company)
        problems = ledger_mismatches()
        say(f"overspend: {spent_past} units past a limit; ledger: {len(problems)} balances differ")
        for problem in problems[:5]:
            self.stderr.write(problem)
        online_ratio = online.ops_per_second / hot_row if hot_row else 0
        offline_ratio = offline_rate / hot_row if hot_row else 0
        say(
            f"charging-bench online_ops={online.ops_per_second:.0f} p99_ms={online.p99_ms:.0f}"
            f" offline_records={offline_rate:.0f} hot_row={hot_row:.0f} online_ratio={online_ratio:.2f}"
            f" offline_ratio={offline_ratio:.2f} overspend={spent_past} ledger={'ok' if not problems else 'mismatch'}"
        )

    def _offline(self, company, options) -> float:
        """Records posted in batches by this process and charged by Celery workers meanwhile."""
        batch = options["batch"] or settings.CHARGING_BATCH_SIZE
        count = options["offline_records"]
        result = offline_run(
            company=company, count=count, batch=batch, workers=options["offline_workers"], prefix="bench-offline"
        )
        if result.records != count:
            raise CommandError(f"only {result.records} of {count} offline records were charged")
        charged_by = f"{result.workers} Celery worker processes" if result.workers else "the tasks run in this process"
        self.stdout.write(f"offline: {count:,} records posted in batches of {batch:,}, charged by {charged_by}")
        return result.records_per_second


def _redis_durability() -> str:
    """Whether the store's log survives a Redis restart before it is applied (the baseline's
    commits are durable; this says how the store's are)."""
    try:
        appendonly = store.client().config_get("appendonly").get("appendonly", "?")
        fsync = store.client().config_get("appendfsync").get("appendfsync", "?")
    except redis.RedisError:
        return "Redis does not say whether it keeps its data"
    if appendonly == "yes":
        return f"Redis keeps its data (appendonly, fsync {fsync}): the log is durable before it is applied"
    return "Redis keeps no append-only file here: the log is durable once applied (every second)"
