"""Celery tasks of the charging app: thin wrappers that load ids and call a service."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from charging.models import ThresholdNotice
from charging.offline import usage_backlog_queue, usage_events_requeue
from charging.online.database import reservations_expire
from charging.online.store import sessions_expire as quota_sessions_expire
from charging.quota import quota_store_enabled
from charging.quota.log import log_apply
from charging.quota.slices import slices_of_lapsed_allowances, slices_return
from charging.thresholds import threshold_notice_notify
from charging.usage_events import usage_event_charge, usage_events_charge

# A lost connection or a serialisation failure is worth another try, with backoff, a few times.
RETRY_ON_DATABASE_HICCUPS = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": settings.CHARGING_TASK_RETRY_MAX_SECONDS,
    "max_retries": settings.CHARGING_TASK_RETRIES,
    "acks_late": True,
}


@shared_task(**RETRY_ON_DATABASE_HICCUPS)
def charge_usage_event(event_id: int) -> str:
    return usage_event_charge(event_id=event_id).status


@shared_task(**RETRY_ON_DATABASE_HICCUPS)
def charge_usage_batch(event_ids: list[int]) -> int:
    """Charges a batch of stored usage records in one transaction; a re-delivery charges nothing
    (the records it finds charged already are skipped)."""
    return usage_events_charge(event_ids=event_ids)


@shared_task(acks_late=True)
def requeue_uncharged_usage() -> int:
    """Queues again the usage records whose charging task was lost. Beat runs it every few
    minutes; a run that fails leaves its mark where it was, for the next one."""
    return usage_events_requeue()


@shared_task(acks_late=True)
def queue_usage_backlog() -> int:
    """Queues the charging tasks the broker could not take when their records were stored.
    Beat runs it every few seconds: the first run once the broker is back drains it."""
    return usage_backlog_queue()


@shared_task(acks_late=True)
def expire_reservations() -> int:
    """Releases the grants of sessions that stopped reporting. Beat runs it every minute, so a
    failed run is simply retried by the next one."""
    expired = reservations_expire()
    if quota_store_enabled():
        expired += quota_sessions_expire()
        slices_return(counters=slices_of_lapsed_allowances())
    return expired


@shared_task(**RETRY_ON_DATABASE_HICCUPS)
def apply_quota_log() -> int:
    """Writes what the quota store's sessions did to the database (a no-op when it is off)."""
    return log_apply() if quota_store_enabled() else 0


@shared_task(**RETRY_ON_DATABASE_HICCUPS)
def notify_customer(notice_id: int) -> int:
    """Tells a threshold notice's customer (and managers); a repeat sends nothing again."""
    if not ThresholdNotice.objects.filter(pk=notice_id).exists():
        return 0  # the bucket or limit was deleted since
    return len(threshold_notice_notify(notice_id=notice_id))
