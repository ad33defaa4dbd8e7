"""Live balance events: after a charge commits, a compact snapshot goes to the channel layer.

Groups: ``line.<id>`` (the line's owner and agents) and ``node.<id>`` (the managers of that
cost centre; a charge is pushed to every node on the line's path, so a manager watching any
ancestor sees it).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from charging.selectors import line_balance_snapshots, node_snapshots

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


def lines_and_nodes_changed_on_commit(*, line_ids: list[int], node_ids: list[int]) -> None:
    """The same for a batch: each line and each node pushed once, however many charges hit it."""
    transaction.on_commit(lambda: lines_and_nodes_publish(line_ids=line_ids, node_ids=node_ids))


def lines_and_nodes_publish(*, line_ids: list[int], node_ids: list[int]) -> None:
    messages = [
        (line_group(line_id), {"type": "line.changed", "line": line_id, "snapshot": snapshot})
        for line_id, snapshot in line_balance_snapshots(line_ids=line_ids).items()
    ]
    _publish(messages=messages + _node_messages(node_ids=node_ids), what=f"{len(line_ids)} lines")


def _node_messages(*, node_ids: list[int]) -> list[tuple[str, dict]]:
    return [
        (node_group(node_id), {"type": "node.changed", "node": node_id, "snapshot": snapshot})
        for node_id, snapshot in node_snapshots(node_ids=node_ids).items()
    ]


def _publish(*, messages: list[tuple[str, dict]], what: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(_send_all)(layer, messages)
    except Exception:
        # A live push is best effort: the charge is committed and the page catches up on reload.
        logger.exception("could not publish the balance change of %s", what)


def line_and_path_publish(*, line_id: int, node_ids: list[int]) -> None:
    lines_and_nodes_publish(line_ids=[line_id], node_ids=node_ids)


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)
