"""Celery tasks of the charging app: thin wrappers that load ids and call a service."""

from celery import shared_task
from django.db import OperationalError

from charging.models import ThresholdNotice
from charging.services import usage_event_charge
from charging.thresholds import threshold_notice_notify


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
    acks_late=True,
)
def charge_usage_event(event_id: int) -> str:
    return usage_event_charge(event_id=event_id).status


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
    acks_late=True,
)
def notify_customer(notice_id: int) -> int:
    """Tells a threshold notice's customer (and managers); a repeat sends nothing again."""
    if not ThresholdNotice.objects.filter(pk=notice_id).exists():
        return 0  # the bucket or limit was deleted since
    return len(threshold_notice_notify(notice_id=notice_id))
