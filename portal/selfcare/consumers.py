"""The live websocket: pushes balance changes of the lines a user may see.

On connect it joins the groups of the user's own lines and their billing accounts and, for a
telecom manager, of the cost centres assigned to them (every charge below a node is pushed
to that node's group), then sends the current state of each, so a page that reconnects after
missing pushes shows the truth again. A client may also subscribe to one more line or cost
centre by id, which is allowed only if the user may see it. Consumers never write.

While open, the socket hears from the server at least every ``LIVE_HEARTBEAT_SECONDS``; at
each heartbeat the consumer compares the groups' sequence numbers with what it delivered
and re-sends the state of any group whose push never arrived (a process that fell behind
drops pushes). Every way a socket ends, an exception included, leaves its groups.
"""

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from charging.live import account_group, group_messages, line_group, node_group
from charging.watchers import current_sequences, groups_unwatch, groups_watch, watching_refresh
from enterprise.selectors import cost_centres_visible_to, lines_visible_to, managed_node_ids
from portal.selectors import lines_owned_by

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
# Messages from the channel layer: they never touch the database (see ``dispatch``).
PUSHES = frozenset({"line.changed", "account.changed", "node.changed", "threshold.crossed"})
SUBSCRIBABLE = {"line": line_group, "node": node_group}


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def __call__(self, scope, receive, send):
        self.groups_joined: set[str] = set()
        self.delivered: dict[str, int] = {}  # per group, the highest sequence sent to the page
        self.shown: dict[str, dict] = {}  # per group, the state the page shows
        self.heartbeat: asyncio.Task | None = None
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when a handler raised, the server went away or the task was cancelled:
            # ``disconnect`` is not called then.
            await self._leave_groups()

    async def dispatch(self, message):
        # Channels closes stale database connections before every message, in a worker thread;
        # pushes never use the database, and that thread hop would be every socket's bottleneck.
        if message["type"] in PUSHES:
            await getattr(self, get_handler_name(message))(message)
            return
        await super().dispatch(message)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()
        await self._join(await self._own_groups(user))
        await self._send_current(sorted(self.groups_joined))
        # Last: the page is up to date from here on.
        await self.send_json(
            {
                "type": "ready",
                "lines": sorted(self._ids("line")),
                "cost_centres": sorted(self._ids("node")),
                "heartbeat_seconds": settings.LIVE_HEARTBEAT_SECONDS,
            }
        )
        self.heartbeat = asyncio.create_task(self._beat())

    async def disconnect(self, code):
        await self._leave_groups()

    async def receive_json(self, content, **kwargs):
        if content.get("action") != "subscribe":
            await self.send_json({"type": "error", "code": "unknown_action"})
            return
        kind = "node" if "node" in content else "line"
        pk = content.get(kind)
        if not isinstance(pk, int) or not await self._may_see(self.scope["user"], kind, pk):
            # The same answer whether it is someone else's or does not exist.
            await self.send_json({"type": "error", "code": "not_found", kind: pk})
            return
        group = SUBSCRIBABLE[kind](pk)
        await self._join([group])
        await self.send_json({"type": "subscribed", kind: pk})
        await self._send_current([group])

    async def line_changed(self, event):
        await self._forward(event)

    async def account_changed(self, event):
        await self._forward(event)

    async def node_changed(self, event):
        await self._forward(event)

    async def threshold_crossed(self, event):
        await self.send_json({"type": "threshold.crossed", **event["notice"]})

    async def _forward(self, event) -> None:
        """Sends a push on, unless the page already has a newer state of its group, or the
        same one (an account's money is pushed with every charge of its lines, moved or not)."""
        group = event["group"]
        if event["seq"] <= self.delivered.get(group, -1):
            return
        self.delivered[group] = event["seq"]
        state = {key: value for key, value in event["view"].items() if key != "seq"}
        if self.shown.get(group) == state:
            return
        self.shown[group] = state
        await self.send_json(event["view"])

    async def _send_current(self, groups: list[str]) -> None:
        """Sends the state of ``groups`` as of now, numbered so older pushes are ignored."""
        for _, message in await self._messages_now(groups):
            await self.dispatch(message)

    async def _beat(self) -> None:
        """Every heartbeat: re-send the groups whose last push did not arrive, then tell the
        page the socket is alive. A push numbered at the previous beat has had a whole beat to
        arrive, so one still in flight is not mistaken for a lost one."""
        expected: dict[str, int] = {}
        while True:
            await asyncio.sleep(settings.LIVE_HEARTBEAT_SECONDS)
            missed = [group for group, seq in expected.items() if seq > self.delivered.get(group, -1)]
            if missed:
                await self._send_current(missed)
            await self.send_json({"type": "heartbeat"})
            expected = await sync_to_async(self._sequences_now)(sorted(self.groups_joined))

    @staticmethod
    def _sequences_now(groups: list[str]) -> dict[str, int]:
        watching_refresh()
        return current_sequences(groups)

    async def _join(self, groups: list[str]) -> None:
        new = [group for group in groups if group not in self.groups_joined]
        for group in new:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.update(new)
        await sync_to_async(groups_watch)(new)

    async def _leave_groups(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            self.heartbeat = None
        joined, self.groups_joined = self.groups_joined, set()
        if not joined:
            return
        try:
            for group in joined:
                await self.channel_layer.group_discard(group, self.channel_name)
            await sync_to_async(groups_unwatch)(joined)
        except Exception:
            # The layer's server is out of reach: the process's counts expire with it.
            logger.exception("could not leave %d live groups", len(joined))

    def _ids(self, kind: str) -> set[int]:
        return {int(g.split(".")[1]) for g in self.groups_joined if g.startswith(f"{kind}.")}

    @database_sync_to_async
    def _messages_now(self, groups: list[str]) -> list[tuple[str, dict]]:
        return group_messages(current_sequences(groups))

    @database_sync_to_async
    def _own_groups(self, user) -> list[str]:
        """The user's lines and their accounts, and the cost centres they manage."""
        rows = list(lines_owned_by(user=user).values_list("pk", "billing_account_id"))
        lines = [line_group(line_id) for line_id, _ in rows]
        accounts = sorted({account_group(account_id) for _, account_id in rows})
        return lines + accounts + [node_group(node_id) for node_id in managed_node_ids(user=user)]

    @database_sync_to_async
    def _may_see(self, user, kind: str, pk: int) -> bool:
        visible = lines_visible_to(user=user) if kind == "line" else cost_centres_visible_to(user=user)
        return visible.filter(pk=pk).exists()
