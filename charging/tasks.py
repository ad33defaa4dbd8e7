"""Celery tasks of the charging app: thin wrappers that load ids and call a service."""

from celery import shared_task
from django.db import OperationalError

from charging.services import usage_event_charge


@shared_task(
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=30,
    max_retries=5,
    acks_late=True,
)
def charge_usage_event(event_id: int) -> str:
    return usage_event_charge(event_id=event_id).status
