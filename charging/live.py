"""Live balance events: after a charge commits, a compact snapshot goes to the channel layer.

Groups: ``line.<id>`` (the line's owner and agents), ``account.<id>`` (whoever owns the
billing account: its money moved) and ``node.<id>`` (the managers of that cost centre; a
charge is pushed to every node on the line's path, so a manager watching any ancestor sees
it). Each line, account and node is pushed once per transaction's worth of changes, and
only if somebody watches it (``charging.watchers``). A push carries the whole state a page
shows of its group (the latest wins), numbered so that a page can ignore an older one.
"""

import logging
from collections.abc import Iterable, Mapping

from channels.layers import get_channel_layer
from django.db import transaction

from charging.selectors import account_money_snapshots, line_balance_snapshots, node_snapshots
from charging.watchers import watched_sequences
from portal.channel_layer import group_send_all
from portal.models import Line

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
    *,
    line_ids: Iterable[int] = (),
    node_ids: Iterable[int] = (),
    account_ids: Iterable[int] = (),
    line_accounts: Mapping[int, int] | None = None,
) -> None:
    """Queues, for after commit, a push of each line's balances to its owner, of the money of
    each account (the lines' own, and any named) to the account's owner, and of each node's
    counters to its managers. ``line_accounts``: the lines' accounts by line, when the caller
    has them at hand (else they are read when publishing)."""
    lines, nodes, accounts = sorted(set(line_ids)), sorted(set(node_ids)), sorted(set(account_ids))
    known = dict(line_accounts) if line_accounts is not None else None
    transaction.on_commit(
        lambda: changed_publish(line_ids=lines, node_ids=nodes, account_ids=accounts, line_accounts=known)
    )


def changed_publish(
    *,
    line_ids: list[int],
    node_ids: list[int],
    account_ids: list[int] = (),
    line_accounts: Mapping[int, int] | None = None,
) -> None:
    of_lines = line_accounts.values() if line_accounts is not None else _accounts_of(line_ids)
    all_accounts = sorted({*account_ids, *of_lines})
    groups = (
        [line_group(i) for i in line_ids] + [node_group(i) for i in node_ids] + [account_group(i) for i in all_accounts]
    )
    if get_channel_layer() is None:
        return
    try:
        # Numbered before the snapshots are read: see charging.watchers.
        group_send_all(group_messages(watched_sequences(groups)))
    except Exception:
        # A live push is best effort: the charge is committed, and a page that missed it is
        # sent a fresh snapshot at its next heartbeat.
        logger.exception("could not publish the balance change of lines %s", line_ids[:10])


def group_messages(sequences: Mapping[str, int]) -> list[tuple[str, dict]]:
    """The push for each group, as of now, numbered with its sequence (a snapshot read after
    the number was taken holds every change numbered before). ``view`` is what the page gets."""
    ids: dict[str, list[int]] = {"line": [], "account": [], "node": []}
    for group in sequences:
        kind, _, pk = group.partition(".")
        ids[kind].append(int(pk))
    views = {}
    for line_id, snapshot in line_balance_snapshots(line_ids=ids["line"]).items():
        views[line_group(line_id)] = {"type": "line.changed", "line": line_id, **snapshot}
    for account_id, money in account_money_snapshots(account_ids=ids["account"]).items():
        views[account_group(account_id)] = {"type": "account.changed", "account": account_id, "money": money}
    for node_id, snapshot in node_snapshots(node_ids=ids["node"]).items():
        views[node_group(node_id)] = {"type": "node.changed", "node": node_id, **snapshot}
    return [
        (
            group,
            {"type": view["type"], "group": group, "seq": sequences[group], "view": {**view, "seq": sequences[group]}},
        )
        for group, view in views.items()
    ]


def _accounts_of(line_ids: list[int]) -> set[int]:
    return (
        set(Line.objects.filter(pk__any=line_ids).values_list("billing_account_id", flat=True)) if line_ids else set()
    )
