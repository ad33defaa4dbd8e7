"""Threshold notices: a bucket or a node limit used past 50, 80 or 100 percent tells its owner,
once per period.

``thresholds_check`` runs inside the charging transaction; the live push and the customer
notification leave only after it commits. Notices are kept unique by constraint, so a crossing
notifies exactly once however often (or however concurrently) the check runs.
"""

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q

from charging.live import line_group, node_group
from charging.locks import LimitRow, threshold_notice_lock
from charging.models import Bucket, NodeLimit, ThresholdNotice
from charging.units import Unit, format_units
from enterprise.models import CostCentre, ManagerAssignment
from portal.channel_layer import group_send_all
from portal.models import Customer, Notification
from portal.notifications import notification_send
from portal.task_queue import task_queue

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = (50, 80, 100)

_LIMIT_NOUNS = {Unit.BYTES: "data", Unit.SECONDS: "call time", Unit.MESSAGES: "SMS", Unit.ITEMS: "purchase"}


def bucket_thresholds() -> tuple[int, ...]:
    return tuple(getattr(settings, "CHARGING_THRESHOLDS", DEFAULT_THRESHOLDS))


def limit_thresholds(limit: NodeLimit | LimitRow) -> tuple[int, ...]:
    return tuple(limit.thresholds or DEFAULT_THRESHOLDS)


def _crossed(thresholds: Iterable[int], used: int, of: int) -> list[int]:
    if of <= 0:
        return []
    percent = used * 100 // of
    return sorted({int(t) for t in thresholds if 0 < int(t) <= percent})


def thresholds_check(
    *, buckets: Iterable[Bucket], limits: Iterable[NodeLimit | LimitRow], at: datetime
) -> list[ThresholdNotice]:
    """Records every threshold the given buckets and limits have now reached and not yet
    noticed this period; returns the new notices.

    Call it inside the transaction that moved the balances, with their rows locked and saved.
    Each new notice is pushed live and notified to its customer after that transaction commits.
    """
    wanted: list[ThresholdNotice] = []
    buckets = list(buckets)
    limits = list(limits)
    for bucket in buckets:
        for percent in _crossed(bucket_thresholds(), bucket.used, bucket.initial):
            wanted.append(
                ThresholdNotice(
                    bucket=bucket,
                    percent=percent,
                    period_start=bucket.valid_from,
                    used=bucket.used,
                    of=bucket.initial,
                    created_at=at,
                )
            )
    for limit in limits:
        for percent in _crossed(limit_thresholds(limit), limit.used, limit.limit):
            wanted.append(
                ThresholdNotice(
                    limit_id=limit.pk,  # a NodeLimit or a batch's LimitRow
                    percent=percent,
                    period_start=limit.period_start,
                    used=limit.used,
                    of=limit.limit,
                    created_at=at,
                )
            )
    if not wanted:
        return []

    existing = set(
        ThresholdNotice.objects.filter(
            Q(bucket__in=[b.pk for b in buckets]) | Q(limit__in=[x.pk for x in limits])
        ).values_list("bucket_id", "limit_id", "percent", "period_start")
    )
    created: list[ThresholdNotice] = []
    for notice in wanted:
        if (notice.bucket_id, notice.limit_id, notice.percent, notice.period_start) in existing:
            continue
        try:
            with transaction.atomic():
                notice.save(force_insert=True)
        except IntegrityError:
            continue  # a concurrent twin recorded it first; it notifies, this one does not
        created.append(notice)
        transaction.on_commit(lambda notice=notice: threshold_notice_publish(notice=notice))
        transaction.on_commit(lambda notice_id=notice.pk: _notify_later(notice_id))
    return created


def _notify_later(notice_id: int) -> None:
    task_queue("charging.tasks.notify_customer", notice_id)


def notice_name(notice: ThresholdNotice) -> str:
    if notice.bucket is not None:
        return notice.bucket.name
    limit = notice.limit
    return f"{limit.node.name} {_LIMIT_NOUNS.get(limit.unit, limit.unit)} limit"


def notice_unit(notice: ThresholdNotice) -> str:
    return notice.bucket.unit if notice.bucket is not None else notice.limit.unit


def notice_subject(notice: ThresholdNotice) -> str:
    """e.g. ``Your Data allowance is 80% used: 8.00 GB of 10.00 GB``."""
    unit = notice_unit(notice)
    what = f"{notice_name(notice)} allowance" if notice.bucket is not None else notice_name(notice)
    return (
        f"Your {what} is {notice.percent}% used: {format_units(notice.used, unit)} of {format_units(notice.of, unit)}"
    )


def _node(notice: ThresholdNotice) -> CostCentre | None:
    if notice.limit is not None:
        return notice.limit.node
    return notice.bucket.cost_centre  # None for a line's own bucket


def _groups(notice: ThresholdNotice) -> list[str]:
    node = _node(notice)
    if node is None:
        return [line_group(notice.bucket.line_id)]
    node_ids = CostCentre.objects.get(pk=node.pk).get_ancestors(include_self=True).values_list("pk", flat=True)
    return [node_group(node_id) for node_id in node_ids]


def threshold_notice_publish(*, notice: ThresholdNotice) -> None:
    """Pushes a committed notice to the line's group, or to the node's and its ancestors'."""
    if get_channel_layer() is None:
        return
    message = {
        "type": "threshold.crossed",
        "notice": {
            "id": notice.pk,
            "percent": notice.percent,
            "name": notice_name(notice),
            "used": notice.used,
            "of": notice.of,
            "unit": notice_unit(notice),
            "text": notice_subject(notice),
        },
    }
    try:
        group_send_all([(group, message) for group in _groups(notice)])
    except Exception:
        # Best effort: the notice is committed, and the notification is sent either way.
        logger.exception("could not publish threshold notice %s", notice.pk)


def _recipients(notice: ThresholdNotice) -> list[tuple[Customer, AbstractBaseUser | None]]:
    """Who hears of a notice: a line's customer; for a pool or a limit, the company's
    customer and each manager of the node or an ancestor (once each)."""
    node = _node(notice)
    if node is None:
        return [(notice.bucket.line.billing_account.customer, None)]
    customer = node.company.customer
    managers = (
        ManagerAssignment.objects.filter(node__in=node.get_ancestors(include_self=True))
        .exclude(user_id=customer.user_id)
        .select_related("user")
        .order_by("user_id")
    )
    users = {assignment.user_id: assignment.user for assignment in managers}
    return [(customer, None), *((customer, user) for user in users.values())]


@transaction.atomic
def threshold_notice_notify(*, notice_id: int) -> Sequence[Notification]:
    """Sends a notice's notifications to everyone who has not had one yet; returns those sent.

    The notice row is locked, so two workers handling the same notice never both send.
    """
    notice = threshold_notice_lock(notice_id=notice_id)
    kind = f"threshold:{notice.pk}"
    done = set(Notification.objects.filter(kind=kind).values_list("customer_id", "user_id"))
    subject = notice_subject(notice)
    body = f"{subject}.\n\nSee your usage in the portal."
    sent = []
    for customer, user in _recipients(notice):
        if (customer.pk, user.pk if user else None) in done:
            continue
        sent.append(notification_send(customer=customer, subject=subject, body=body, kind=kind, user=user))
    return sent
