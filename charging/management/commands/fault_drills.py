"""Fault drills on a PostgreSQL and a Redis of their own: ``make faults``.

Run as it is, the command starts the drills' servers in a folder of its own, runs itself
again against them (``--inside``), and removes them afterwards. Its last line sums the
drills: ``faults runs=N lost=0 doubled=0 overspend=0 ledger=ok`` when nothing was lost.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from charging.faults.drills import drills_run
from charging.faults.servers import PrivatePostgres, PrivateRedis, free_port

# The drills' outages last seconds: retries, redelivery and the sweep are tuned to match.
DRILL_ENV = {
    "CHARGING_TASK_RETRY_MAX_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT": "15",
    "CHARGING_BATCH_SIZE": "4000",
    "DJANGO_CONN_MAX_AGE": "60",
}


class Command(BaseCommand):
    help = "Crashes a worker, Redis, PostgreSQL and the log follower mid-run and counts what was lost."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--inside", action="store_true", help="(internal) run the drills on the servers named")

    def handle(self, *args, inside: bool = False, **options):
        if inside:
            self._drills()
        else:
            self._launch()

    def _launch(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="portal-faults-"))
        postgres, redis = PrivatePostgres(root, free_port()), PrivateRedis(root, free_port())
        try:
            postgres.create()
            redis.start()
            env = {
                **os.environ,
                **DRILL_ENV,
                "DATABASE_URL": postgres.url,
                "REDIS_URL": redis.url,
                "FAULTS_ROOT": str(root),
                "FAULTS_PG_PORT": str(postgres.port),
                "FAULTS_REDIS_PORT": str(redis.port),
            }
            command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "fault_drills", "--inside"]
            drills = subprocess.run(command, env=env)  # noqa: S603
        finally:
            redis.stop()
            postgres.stop()
            shutil.rmtree(root, ignore_errors=True)
        if drills.returncode:
            raise CommandError("the fault drills failed: see above")

    def _drills(self) -> None:
        root = Path(os.environ["FAULTS_ROOT"])
        postgres = PrivatePostgres(root, int(os.environ["FAULTS_PG_PORT"]))
        redis = PrivateRedis(root, int(os.environ["FAULTS_REDIS_PORT"]))
        call_command("migrate", verbosity=0)
        outcomes = drills_run(postgres=postgres, redis=redis, report=lambda line: self.stdout.write(line))
        books = "ok" if all(o.ledger_ok and o.slices_ok for o in outcomes) else "MISMATCH"
        self.stdout.write(
            f"faults runs={len(outcomes)} lost={sum(o.lost for o in outcomes)}"
            f" doubled={sum(o.doubled for o in outcomes)} overspend={sum(o.overspend for o in outcomes)}"
            f" ledger={books}"
        )
        if not all(o.ok for o in outcomes):
            raise CommandError("a drill lost, doubled or overspent something")
