"""Real processes and servers for the integration and browser tests."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from django.db import transaction
from django.test import Client

from charging.usage_events import usage_event_charge, usage_event_ingest
from portal.processes import database_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def asgi_server(port: int | None = None) -> Iterator[str]:
    """Serves the portal (HTTP and websockets) from a thread of this process; yields its URL."""
    port = port or free_port()
    config = uvicorn.Config("portal.asgi:application", host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def data_charged(line, external_id: str, quantity: int) -> None:
    """A data record for ``line`` stored and charged at once, as a worker would (its live push
    leaves when the charge commits)."""
    with transaction.atomic():
        event, _ = usage_event_ingest(
            payload={"external_id": external_id, "msisdn": line.msisdn, "service": "data", "quantity": quantity}
        )
    usage_event_charge(event_id=event.pk)


def websocket_headers(user=None) -> list[tuple[bytes, bytes]]:
    """Headers of a browser's websocket handshake, logged in as ``user`` when given."""
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


async def until_ready(communicator, timeout: float = 2) -> tuple[dict, list[dict]]:
    """Reads a live socket's opening: the current state of each group it joined, then
    ``ready``; returns ``ready`` and those states."""
    states = []
    while (message := await communicator.receive_json_from(timeout=timeout))["type"] != "ready":
        states.append(message)
    return message, states


@contextmanager
def asgi_server_process(*, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serves the portal from a uvicorn process of its own, on this process's database, as
    it runs in production; yields its URL."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, **database_env(), **(env or {})},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server process did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=15)
