"""ASGI middleware: at most so many HTTP requests of a server process run at once.

Under ASGI every request's synchronous part runs in a thread of its own and holds a database
connection until its response is sent, so a burst of requests would open as many connections
as it has requests, until PostgreSQL refuses everyone. Here the rest wait their turn in the
event loop, which costs nothing while they wait. Websockets are not counted: their consumers
use the database one call at a time.
"""

import asyncio


class RequestsAtOnce:
    def __init__(self, app, *, limit: int):
        self.app = app
        self.limit = limit
        self._turns: asyncio.Semaphore | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.limit)
        async with self._turns:
            return await self.app(scope, receive, send)
