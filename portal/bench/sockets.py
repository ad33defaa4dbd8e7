"""The live bench's screens: many websockets in one process of their own, each noting when
it received which value of what it watches (a line's allowance, or a node's usage).

This side knows nothing of Django: it speaks to the server as a browser's page does.
"""

import asyncio
import json
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException


@dataclass(frozen=True)
class Watcher:
    """A socket to open: whose session, and the line (its allowance) or node it watches."""

    cookie: str
    kind: str  # "line" or "node"
    key: int  # the line's allowance (bucket) or the node
    group: str


OPEN_AT_ONCE = 50  # handshakes in flight, as pages opening over a few seconds would be


@dataclass
class SocketLog:
    watcher: Watcher
    times: list[float] = field(default_factory=list)
    values: list[int] = field(default_factory=list)
    ready: bool = False
    dropped: str = ""  # why the server ended a socket the page wanted open

    @property
    def last(self) -> int | None:
        return self.values[-1] if self.values else None


def sockets_watch(url: str, watchers: list[Watcher], ready, stop, results) -> None:
    """Opens a socket per watcher; sets ``ready`` once all are ready, closes them when
    ``stop`` is set, then puts their logs on ``results``. Runs in a process of its own."""
    logs = asyncio.run(_watch_all(url, watchers, ready, stop))
    results.put(logs)


async def _watch_all(url: str, watchers: list[Watcher], ready, stop) -> list[SocketLog]:
    logs = [SocketLog(watcher=w) for w in watchers]
    openings = asyncio.Semaphore(OPEN_AT_ONCE)
    stopping = asyncio.Event()
    readies = [asyncio.get_running_loop().create_future() for _ in logs]
    tasks = [
        asyncio.create_task(_watch(url, log, openings, stopping, done)) for log, done in zip(logs, readies, strict=True)
    ]
    await asyncio.wait(readies, timeout=300)
    ready.set()
    await asyncio.to_thread(stop.wait)
    stopping.set()
    await asyncio.gather(*tasks)
    return logs


async def _watch(url: str, log: SocketLog, openings, stopping, ready_future) -> None:
    ws_url = url.replace("http", "ws", 1) + "/ws/live/"
    headers = {"Cookie": log.watcher.cookie}
    try:
        async with openings:
            socket = await connect(ws_url, origin=url, additional_headers=headers, open_timeout=60, compression=None)
        async with socket:
            closer = asyncio.create_task(_close_on(stopping, socket))
            async for raw in socket:
                _note(log, json.loads(raw), ready_future)
            closer.cancel()
            if not stopping.is_set():
                log.dropped = f"closed by the server ({socket.close_code})"
    except (ConnectionClosed, WebSocketException, OSError, TimeoutError) as error:
        if not stopping.is_set():
            log.dropped = f"{type(error).__name__}: {error}"
    finally:
        if not ready_future.done():
            ready_future.set_result(False)


async def _close_on(stopping: asyncio.Event, socket) -> None:
    await stopping.wait()
    await socket.close()


def _note(log: SocketLog, message: dict, ready_future) -> None:
    watcher = log.watcher
    value = None
    if message["type"] == "ready":
        log.ready = True
        ready_future.set_result(True)
    elif message["type"] == "line.changed" and watcher.kind == "line":
        value = next((b["remaining"] for b in message["buckets"] if b["id"] == watcher.key), None)
    elif message["type"] == "node.changed" and watcher.kind == "node" and message["node"] == watcher.key:
        value = next((limit["used"] for limit in message["limits"] if limit["unit"] == "bytes"), None)
    if value is not None:
        log.times.append(time.time())
        log.values.append(value)
