"""Live balance events: after a charge commits, a compact snapshot goes to the channel layer.

Groups: ``line.<id>`` (the line's owner and agents), ``account.<id>`` (whoever owns the
billing account: its money moved) and ``node.<id>`` (the managers of that cost centre; a
charge is pushed to every node on the line's path, so a manager watching any ancestor sees
it). Each line, account and node is pushed once per transaction's worth of changes.
"""

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from charging.selectors import account_money_snapshots, line_balance_snapshots, node_snapshots

logger = logging.getLogger(__name__)


def line_group(line_id: int) -> str:
    return f"line.{line_id}"


def account_group(account_id: int) -> str:
    return f"account.{account_id}"


def node_group(node_id: int) -> str:
    return f"node.{node_id}"


def line_changed_on_commit(*, line_id: int) -> None:
    """Queues a push of the line's balances for when the surrounding transaction commits."""
    changed_on_commit(line_ids=[line_id])


def changed_on_commit(
    *, line_ids: Iterable[int] = (), node_ids: Iterable[int] = (), account_ids: Iterable[int] = ()
) -> None:
    """Queues, for after commit, a push of each line's balances to its owner, of the money of
    each account (the lines' own, and any named) to the account's owner, and of each node's
    counters to its managers."""
    lines, nodes, accounts = sorted(set(line_ids)), sorted(set(node_ids)), sorted(set(account_ids))
    transaction.on_commit(lambda: changed_publish(line_ids=lines, node_ids=nodes, account_ids=accounts))


def changed_publish(*, line_ids: list[int], node_ids: list[int], account_ids: list[int] = ()) -> None:
    messages = []
    accounts: dict[int, dict] = account_money_snapshots(account_ids=account_ids)
    for line_id, snapshot in line_balance_snapshots(line_ids=line_ids).items():
        messages.append((line_group(line_id), {"type": "line.changed", "line": line_id, "snapshot": snapshot}))
        accounts[snapshot["money"]["account"]] = snapshot["money"]
    for account_id, money in accounts.items():
        messages.append((account_group(account_id), {"type": "account.changed", "account": account_id, "money": money}))
    for node_id, snapshot in node_snapshots(node_ids=node_ids).items():
        messages.append((node_group(node_id), {"type": "node.changed", "node": node_id, "snapshot": snapshot}))
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    try:
        async_to_sync(_send_all)(layer, messages)
    except Exception:
        # A live push is best effort: the charge is committed and the page catches up on reload.
        logger.exception("could not publish the balance change of lines %s", line_ids[:10])


async def _send_all(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)
