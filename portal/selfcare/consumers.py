"""The live websocket: pushes balance changes of the lines a user may see.

On connect it joins the groups of the user's own lines and their billing accounts and, for a
telecom manager, of the cost centres assigned to them (every charge below a node is pushed
to that node's group). A client may also subscribe to one more line by id, which is allowed
only if the user may see that line (``enterprise.selectors.lines_visible_to``: their own, one
below their assigned nodes, or any line for an agent). Consumers never write.
"""

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from charging.live import account_group, groups_unwatch, groups_watch, line_group, node_group
from enterprise.selectors import lines_visible_to, managed_node_ids
from portal.selectors import lines_owned_by

CLOSE_UNAUTHENTICATED = 4401


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.groups_joined: set[str] = set()
        await self.accept()
        line_ids, account_ids = await self._own_lines_and_accounts(user)
        for line_id in line_ids:
            await self._join(line_group(line_id))
        for account_id in account_ids:
            await self._join(account_group(account_id))
        for node_id in await self._managed_node_ids(user):
            await self._join(node_group(node_id))
        await self.send_json(
            {"type": "ready", "lines": sorted(self._ids("line")), "cost_centres": sorted(self._ids("node"))}
        )

    async def disconnect(self, code):
        joined = getattr(self, "groups_joined", set())
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await sync_to_async(groups_unwatch)(joined)

    async def receive_json(self, content, **kwargs):
        if content.get("action") != "subscribe":
            await self.send_json({"type": "error", "code": "unknown_action"})
            return
        line_id = content.get("line")
        if not isinstance(line_id, int) or not await self._may_see_line(self.scope["user"], line_id):
            # The same answer whether the line is someone else's or does not exist.
            await self.send_json({"type": "error", "code": "not_found", "line": line_id})
            return
        await self._join(line_group(line_id))
        await self.send_json({"type": "subscribed", "line": line_id})

    async def line_changed(self, event):
        await self.send_json({"type": "line.changed", "line": event["line"], **event["snapshot"]})

    async def account_changed(self, event):
        await self.send_json({"type": "account.changed", "account": event["account"], "money": event["money"]})

    async def node_changed(self, event):
        await self.send_json({"type": "node.changed", "node": event["node"], **event["snapshot"]})

    async def threshold_crossed(self, event):
        await self.send_json({"type": "threshold.crossed", **event["notice"]})

    async def _join(self, group: str) -> None:
        if group in self.groups_joined:
            return
        await self.channel_layer.group_add(group, self.channel_name)
        await sync_to_async(groups_watch)([group])
        self.groups_joined.add(group)

    def _ids(self, kind: str) -> set[int]:
        return {int(g.split(".")[1]) for g in self.groups_joined if g.startswith(f"{kind}.")}

    @database_sync_to_async
    def _own_lines_and_accounts(self, user) -> tuple[list[int], set[int]]:
        rows = list(lines_owned_by(user=user).values_list("pk", "billing_account_id"))
        return [line_id for line_id, _ in rows], {account_id for _, account_id in rows}

    @database_sync_to_async
    def _managed_node_ids(self, user) -> list[int]:
        return managed_node_ids(user=user)

    @database_sync_to_async
    def _may_see_line(self, user, line_id: int) -> bool:
        return lines_visible_to(user=user).filter(pk=line_id).exists()
