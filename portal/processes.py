"""Other processes of the portal, pointed at the database this process uses: a Celery worker
for the integration tests and for the charging benchmark's offline run."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from portal.celery import app


def database_env() -> dict[str, str]:
    """Environment that points another process at the database this process is using (a test
    or bench database included)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(settings["NAME"]), "DATABASE_URL": ""}
    user = settings["USER"] or ""
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    auth = f"{user}{password}@" if user else ""
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{settings['NAME']}"}


class CeleryWorker(subprocess.Popen):
    """A worker process, and the node name it answers remote control by."""

    node_name: str


@contextmanager
def celery_worker(*, queue: str, env: dict[str, str] | None = None) -> Iterator[CeleryWorker]:
    """A real Celery worker process (one task at a time) on ``queue``, against this process's
    database and broker, with ``env`` added to its environment; stopped on leaving."""
    # A worker keeps its connection, whatever an ASGI server in this process set for itself.
    inherited = {name: value for name, value in os.environ.items() if name != "DJANGO_CONN_MAX_AGE"}
    env = {**inherited, **database_env(), "CELERY_QUEUE": queue, **(env or {})}
    node_name = f"{queue}-{uuid.uuid4().hex[:8]}@localhost"
    worker = CeleryWorker(  # noqa: S603  (this interpreter, fixed arguments)
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-Q",
            queue,
            "-n",
            node_name,
            "--loglevel=WARNING",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker.node_name = node_name
    try:
        yield worker
    finally:
        process_stop(worker, timeout=15)


def process_stop(process: subprocess.Popen, *, timeout: float) -> None:
    """Asks a child process to stop, and kills it if it has not within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def celery_workers_wait(workers: list[CeleryWorker], *, timeout: float = 60) -> None:
    """Until every one of ``workers`` has started and answers remote control (a worker that
    answers consumes its queues)."""
    waiting = {worker.node_name for worker in workers}
    deadline = time.monotonic() + timeout
    while waiting:
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"Celery worker {worker.node_name} stopped:\n{worker.stdout.read()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Celery workers not up in {timeout:.0f} s: {sorted(waiting)}")
        for reply in app.control.ping(destination=sorted(waiting), timeout=0.5):
            waiting -= set(reply)
