"""``make run``'s demo stops its server however it is stopped: a plain ``kill`` included."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=1)  # noqa: S310
    except OSError:
        return False
    return True


@pytest.fixture
def embedded_env(tmp_path):
    """The embedded default (SQLite, in-process tasks), on a database file of the test's own."""
    env = {**os.environ, "DATABASE_URL": "", "REDIS_URL": "", "SQLITE_PATH": str(tmp_path / "demo.sqlite3")}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)  # noqa: S603
    return env, manage


def test_a_killed_demo_stops_its_server_and_frees_the_port(embedded_env):
    env, manage = embedded_env
    port = _free_port()
    demo = subprocess.Popen(  # noqa: S603
        [*manage, "rundemo", "--port", str(port), "--rate", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(port):
            assert demo.poll() is None, "the demo stopped on its own"
            assert time.monotonic() < deadline, "the demo's server did not come up in 60 s"
            time.sleep(0.2)

        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
    finally:
        demo.kill()

    assert not _answers(port), "the server outlived the demo"
