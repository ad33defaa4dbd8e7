"""Live balance events: after a charge commits, a compact snapshot goes to the channel layer.

Groups: ``line.<id>`` (the line's owner and agents) and ``node.<id>`` (the managers of that
cost centre; a charge is pushed to every node on the line's path, so a manager watching any
ancestor sees it).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from charging.selectors import line_balance_snapshot, node_snapshots

logger = logging.getLogger(__name__)


def line_group(line_id: int) -> str:
    return f"line.{line_id}"


def node_group(node_id: int) -> str:
    return f"node.{node_id}"


def line_changed_on_commit(*, line_id: int) -> None:
    """Queues a push of the line's balances for when the surrounding transaction commits."""
    transaction.on_commit(lambda: line_changed_publish(line_id=line_id))


def line_changed_publish(*, line_id: int) -> None:
    line_and_path_publish(line_id=line_id, node_ids=[])


def line_and_path_changed_on_commit(*, line_id: int, node_ids: list[int]) -> None:
    """Queues, for after commit, a push of the line's balances to its owner and of the
    counters of every node on its path to the managers watching them."""
    transaction.on_commit(lambda: line_and_path_publish(line_id=line_id, node_ids=node_ids))


def line_and_path_publish(*, line_id: int, node_ids: list[int]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    messages = [
        (
            line_group(line_id),
            {"type": "line.changed", "line": line_id, "snapshot": line_balance_snapshot(line_id=line_id)},
        )
    ]
    for node_id, snapshot in node_snapshots(node_ids=node_ids).items():
        messages.append((node_group(node_id), {"type": "node.changed", "node": node_id, "snapshot": snapshot}))
    try:
        async_to_sync(_send_all)(layer, messages)
    except Exception:
        # A live push is best effort: the charge is committed and the page catches up on reload.
        logger.exception("could not publish balance change of line %s", line_id)


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)
