"""``make bench-live`` end to end, small: every phase runs against two real server processes,
nothing is lost or dropped, and the last line is the summary in its fixed form."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import redis_url, require_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SUMMARY = re.compile(
    r"live-bench sockets=12 processes=2 p95_ms=\d+ lost=0 dropped=0 db_connections_max=(?P<connections>\d+)"
)
PROJECT = Path(__file__).resolve().parents[2]


def test_the_live_bench_runs_every_phase_and_ends_with_its_summary_line():
    require_postgres()
    env = {**os.environ, "REDIS_URL": redis_url()}
    small = ["--lines", "100", "--fanout", "10", "--consumers", "10", "--managers", "2", "--rate", "50"]
    short = ["--seconds", "2", "--stress-sockets", "20", "--stress-seconds", "2", "--page-records", "1000"]
    # Idle past the channel layer's 5 s wait for messages: a quiet socket must survive it.
    idle = ["--idle-sockets", "3", "--idle-seconds", "7"]

    done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "manage.py", "live_bench", *small, *short, *idle],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.strip().splitlines()
    summary = SUMMARY.fullmatch(printed[-1])
    assert summary, printed[-1]
    # Two processes, each at most six requests at once and one connection for its sockets.
    assert 0 < int(summary["connections"]) <= 2 * (6 + 1)
    assert "idle: 3 sockets for 7 s, dropped 0" in printed
    assert "pages under load: 40 clients loading the line page 5 times each, 200 answered" in printed
    assert any(line.startswith("line page with 1,000 usage records: p95 ") for line in printed)
