"""The live bench's moving parts: server processes behind one address, charges posted at a
steady rate from processes of their own, the screens, and what is measured of them.

A charge's latency on a screen runs from its commit (its batch's charge time, which precedes
the commit) to the first moment the screen shows a value that includes it: an allowance at
or below what it was just after that commit, a node's usage at or above it. Those values are
read right after each commit, so a screen's value never includes a charge before it lands.
"""

import bisect
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, connections, transaction
from django.db.models import Max

from charging.models import UsageEvent
from charging.offline import usage_batch_ingest
from portal.bench.live_company import MB, LiveCompany, allowance_remaining, limits_used
from portal.bench.sockets import SocketLog, Watcher, sockets_watch
from portal.celery import app as celery_app
from portal.processes import database_env, process_stop

SERVER_NAME = "live-bench-server"  # the servers' database sessions call themselves this


@dataclass(frozen=True)
class Required:
    """After a commit at ``at``, ``group`` must show ``value`` or a later one."""

    at: float
    group: str
    value: int


@dataclass
class Charged:
    count: int
    seconds: float  # from the first batch to the end of the last
    required: list[Required]


@dataclass
class Figures:
    sockets: int
    charges: int
    seconds: float
    p50_ms: float
    p95_ms: float
    never: int  # (charge, screen) pairs never shown by the end
    lost: int
    dropped: int
    drop_reasons: list[str]

    @property
    def rate(self) -> float:
        return self.charges / self.seconds if self.seconds else 0.0


# --- Servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def servers(*, processes: int, port: int, env: dict[str, str]) -> Iterator[str]:
    """``processes`` uvicorn processes behind one address; yields its URL. Each has a listening
    socket of its own on the port (SO_REUSEPORT), so the kernel spreads connections evenly
    between them; with one shared socket (``--workers``) one process may take most."""
    connections.close_all()
    environment = {**os.environ, **database_env(), "PGAPPNAME": SERVER_NAME, **env}
    environment.pop("DJANGO_CONN_MAX_AGE", None)  # the ASGI module sets its own
    listeners, started = [], []
    try:
        for _ in range(processes):
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(2048)
            listeners.append(listener)
            started.append(
                subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
                    [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--fd", str(listener.fileno())]
                    + ["--lifespan", "off", "--timeout-graceful-shutdown", "5", "--log-level", "warning"],
                    env=environment,
                    pass_fds=[listener.fileno()],
                )
            )
        url = f"http://127.0.0.1:{port}"
        for server in started:
            _wait_until_up(url, server)
        yield url
    finally:
        for server in started:
            process_stop(server, timeout=30)
        for listener in listeners:
            listener.close()


def _wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health/", timeout=2):  # noqa: S310  (a local server of its own)
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not answer within a minute")


class ConnectionsSampler:
    """The most database sessions the servers held at once, sampled every 50 ms."""

    def __init__(self):
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def _sample(self) -> None:
        sampler = connections["default"].__class__(connections["default"].settings_dict, alias="sampler")
        try:
            with sampler.cursor() as cur:
                while not self._stop.wait(0.05):
                    cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [SERVER_NAME])
                    self.most = max(self.most, cur.fetchone()[0])
        finally:
            sampler.close()


# --- Screens ------------------------------------------------------------------------------------


class Screens:
    """Websockets opened from a process of their own; ``logs`` once closed."""

    def __init__(self, url: str, watchers: list[Watcher]):
        context = multiprocessing.get_context("spawn")  # a clean interpreter: no Django, no pools
        self._ready, self._stop, self._results = context.Event(), context.Event(), context.Queue()
        self._process = context.Process(
            target=sockets_watch, args=(url, watchers, self._ready, self._stop, self._results)
        )
        self.logs: list[SocketLog] = []

    def __enter__(self):
        self._process.start()
        deadline = time.monotonic() + 600
        while not self._ready.wait(timeout=0.5):
            if not self._process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the screens' process ended, or did not open them within ten minutes")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.logs = self._results.get(timeout=120)
        self._process.join(timeout=30)
        return False


# --- Charges ------------------------------------------------------------------------------------


def charge_steadily(
    *,
    company: LiveCompany,
    line_ids: list[int],
    rate: float,
    seconds: float,
    drivers: int,
    prefix: str,
    every: float = 0.25,
) -> "Charged":
    """Posts data records of 1 MB on ``line_ids`` at ``rate`` a second for ``seconds``, from
    ``drivers`` processes, each posting a batch every ``every`` seconds and charging it as a
    worker would (mediation's files arrive in a steady stream); returns
    how many were charged, over how long, and what the watched groups must show after each
    commit."""
    connections.close_all()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.time() + 1.0
    processes = [
        context.Process(
            target=_drive,
            args=(company, line_ids, rate / drivers, every, seconds, f"{prefix}-{i}", i, start, results),
        )
        for i in range(drivers)
    ]
    for process in processes:
        process.start()
    gathered = [results.get(timeout=seconds + 300) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    failures = [g for g in gathered if isinstance(g, str)]
    if failures:
        raise RuntimeError(f"a charging process failed:\n{failures[0]}")
    return Charged(
        count=sum(g[0] for g in gathered),
        seconds=max(g[3] for g in gathered) - min(g[2] for g in gathered),
        required=[r for g in gathered for r in g[1]],
    )


def _drive(company, line_ids, rate, every, seconds, prefix, seed, start, results) -> None:
    try:
        celery_app.conf.task_always_eager = True  # each batch is charged here as it commits
        chooser = random.Random(seed)  # noqa: S311  (which line a record is for, not a secret)
        watched_nodes = {w.key for w in company.managers}
        per_tick = max(1, round(rate * every))
        every = per_tick / rate
        charged, required, serial = 0, [], 0
        time.sleep(max(0.0, start - time.time()))
        began = time.time()
        deadline = start + seconds
        tick = start
        while tick < deadline:
            lines = [chooser.choice(line_ids) for _ in range(per_tick)]
            payloads = []
            for line_id in lines:
                serial += 1
                msisdn = company.msisdn_of[line_id]
                payloads.append(
                    {"external_id": f"{prefix}-{serial}", "msisdn": msisdn, "service": "data", "quantity": MB}
                )
            with transaction.atomic():
                usage_batch_ingest(payloads=payloads, source="live-bench")
            ids = [p["external_id"] for p in payloads]
            charged_at = UsageEvent.objects.filter(source="live-bench", external_id__in=ids).aggregate(
                at=Max("charged_at")
            )["at"]
            charged += len(ids)
            required.extend(_required_after(company, lines, watched_nodes, charged_at.timestamp()))
            tick += every
            time.sleep(max(0.0, tick - time.time()))
        connection.close()
        results.put((charged, required, began, time.time()))
    except Exception:
        results.put(traceback.format_exc())


def _required_after(company: LiveCompany, lines: list[int], watched_nodes: set[int], at: float) -> list[Required]:
    allowances = {company.allowance_of_line[i]: i for i in lines if i in company.allowance_of_line}
    nodes = sorted({node for i in lines for node in company.paths[i] if node in watched_nodes})
    required = [
        Required(at=at, group=f"line.{allowances[bucket]}", value=remaining)
        for bucket, remaining in allowance_remaining(list(allowances)).items()
    ]
    required += [Required(at=at, group=f"node.{node}", value=used) for node, used in limits_used(nodes).items()]
    return required


# --- Figures ------------------------------------------------------------------------------------


def figures(*, logs: list[SocketLog], required: list[Required], final: dict[str, int], charges: int, seconds: float):
    """Latency of every (charge, screen watching it) pair, screens left showing a value other
    than the database's (``final``), and screens the server closed."""
    by_group: dict[str, list[SocketLog]] = {}
    for log in logs:
        by_group.setdefault(log.watcher.group, []).append(log)
    ended = max((t for log in logs for t in log.times[-1:]), default=time.time())
    latencies, never = [], 0
    for need in required:
        for log in by_group.get(need.group, []):
            shown = _first_showing(log, need.value)
            if shown is None:
                never += 1
                latencies.append((ended - need.at) * 1000)
            else:
                latencies.append(max(0.0, shown - need.at) * 1000)
    lost = sum(1 for log in logs if log.last != final.get(log.watcher.group))
    dropped = [log.dropped for log in logs if log.dropped]
    return Figures(
        sockets=len(logs),
        charges=charges,
        seconds=seconds,
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        never=never,
        lost=lost,
        dropped=len(dropped),
        drop_reasons=sorted(set(dropped))[:3],
    )


def _first_showing(log: SocketLog, value: int) -> float | None:
    """When the screen first showed ``value`` or beyond (its values only move one way: an
    allowance down, a node's usage up)."""
    if log.watcher.kind == "line":
        position = bisect.bisect_left([-v for v in log.values], -value)
    else:
        position = bisect.bisect_left(log.values, value)
    return log.times[position] if position < len(log.times) else None


def _percentile(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def final_values(company: LiveCompany, watchers: list[Watcher]) -> dict[str, int]:
    lines = {w.key: w.group for w in watchers if w.kind == "line"}
    nodes = [w.key for w in watchers if w.kind == "node"]
    values = {lines[bucket]: remaining for bucket, remaining in allowance_remaining(list(lines)).items()}
    values.update({f"node.{node}": used for node, used in limits_used(nodes).items()})
    return values


# --- Pages --------------------------------------------------------------------------------------


def year_of_usage(*, line_id: int, msisdn: str, records: int) -> None:
    """``records`` charged data records on one line, spread evenly over the last year (one
    statement: the bench measures reading them, not storing them)."""
    table = UsageEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (source, external_id, msisdn, line_id, service, zone, unit, quantity,
                occurred_at, payload, status, reason, errors, units_from_buckets, amount_charged,
                received_at, charged_at, ledger_reference)
            SELECT 'live-bench-year', 'year-' || n, %s, %s, 'data', 'home', 'bytes', 1048576,
                now() - n * (interval '1 year' / %s), '{{}}', 'charged', '', '{{}}', 1048576, 0,
                now() - n * (interval '1 year' / %s), now() - n * (interval '1 year' / %s), ''
            FROM generate_series(1, %s) AS n
            """,  # noqa: S608  (the table name is the model's own)
            [msisdn, line_id, records, records, records, records],
        )
        cursor.execute(f"ANALYZE {table}")


def page_p95(*, url: str, cookie: str, path: str, requests: int = 60, warm_up: int = 10) -> float:
    """The p95 of a page's response time, one request at a time, after ``warm_up`` requests."""
    timings = []
    for index in range(warm_up + requests):
        request = urllib.request.Request(f"{url}{path}", headers={"Cookie": cookie})  # noqa: S310
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  (a local server of its own)
            response.read()
            if response.status != 200 or response.url != f"{url}{path}":
                raise RuntimeError(f"{path} answered {response.status} at {response.url}")
        if index >= warm_up:
            timings.append((time.perf_counter() - started) * 1000)
    return _percentile(timings, 95)


def pages_at_once(*, url: str, cookie: str, path: str, clients: int = 40, requests: int = 5) -> int:
    """``clients`` loading a page ``requests`` times each, all at once; returns how many
    answered 200 (the servers' database sessions are sampled meanwhile)."""

    def load() -> int:
        answered = 0
        for _ in range(requests):
            request = urllib.request.Request(f"{url}{path}", headers={"Cookie": cookie})  # noqa: S310
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310  (a local server of its own)
                response.read()
                answered += response.status == 200
        return answered

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return sum(pool.map(lambda _: load(), range(clients)))
