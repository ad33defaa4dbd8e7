"""``make bench`` end to end, on a small company: every phase runs (the offline records charged
by real Celery worker processes) and the last line is the summary in its fixed form."""

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from portal.processes import database_env
from tests.services import redis_url, require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SUMMARY = re.compile(
    r"charging-bench online_ops=\d+ p99_ms=\d+ offline_records=\d+ hot_row=\d+"
    r" online_ratio=\d+\.\d\d offline_ratio=\d+\.\d\d overspend=0 ledger=ok"
)
PROJECT = Path(__file__).resolve().parents[2]


def test_the_bench_runs_every_phase_and_ends_with_its_summary_line():
    require_postgres()
    # A database name of the bench's own: it creates (and drops) ``test_<name>`` beside this run's.
    server = urlparse(database_env()["DATABASE_URL"])._replace(path=f"/bench_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "DATABASE_URL": server.geturl(), "REDIS_URL": redis_url()}
    small = ["--lines", "200", "--fanout", "2,2,5", "--workers", "4", "--seconds", "0.5"]
    offline = ["--offline-records", "400", "--batch", "100"]

    done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "manage.py", "charging_bench", *small, *offline],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.strip().splitlines()
    assert SUMMARY.fullmatch(printed[-1]), printed[-1]
    assert "offline: 400 records posted in batches of 100, charged by 2 Celery worker processes" in printed
