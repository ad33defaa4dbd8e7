"""Live balance events: after a charge commits, a compact snapshot goes to the channel layer.

Groups: ``line.<id>`` (the line's owner and agents); the enterprise issue adds the managers
of every ancestor cost centre through ``node.<id>``.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from charging.selectors import line_balance_snapshot

logger = logging.getLogger(__name__)


def line_group(line_id: int) -> str:
    return f"line.{line_id}"


def node_group(node_id: int) -> str:
    return f"node.{node_id}"


def line_changed_on_commit(*, line_id: int) -> None:
    """Queues a push of the line's balances for when the surrounding transaction commits."""
    transaction.on_commit(lambda: line_changed_publish(line_id=line_id))


def line_changed_publish(*, line_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "line.changed", "line": line_id, "snapshot": line_balance_snapshot(line_id=line_id)}
    try:
        async_to_sync(layer.group_send)(line_group(line_id), message)
    except Exception:
        # A live push is best effort: the charge is committed and the page catches up on reload.
        logger.exception("could not publish balance change of line %s", line_id)
