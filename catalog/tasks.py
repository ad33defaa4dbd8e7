"""Celery tasks of the catalog: thin wrappers that take ids and call a service.

A fulfilment step retries only on a transient partner error, with exponential backoff and a
bound; when the bound is reached the step fails for good and is compensated.
"""

from celery import shared_task
from django.db import OperationalError

from catalog.adapters import TransientPartnerError, partners
from catalog.fulfilment import fulfilment_step_execute, fulfilment_step_fail
from catalog.subscriptions import recurring_charges_post

STEP_MAX_RETRIES = 5
STEP_BACKOFF_SECONDS = 2
STEP_BACKOFF_MAX_SECONDS = 300


def step_retry_delay(retries: int) -> int:
    """2, 4, 8, 16, ... seconds, at most five minutes."""
    return min(STEP_BACKOFF_SECONDS * 2**retries, STEP_BACKOFF_MAX_SECONDS)


@shared_task(bind=True, max_retries=STEP_MAX_RETRIES, acks_late=True, soft_time_limit=60, time_limit=90)
def fulfilment_step_run(self, step_id: int) -> str:
    try:
        return fulfilment_step_execute(step_id=step_id).state
    except TransientPartnerError as exc:
        if self.request.retries >= self.max_retries:
            attempts = self.request.retries + 1
            return fulfilment_step_fail(step_id=step_id, reason=f"gave up after {attempts} attempts: {exc}").state
        if self.request.is_eager:
            # In-process mode (the embedded default, the tests) has no broker to wait with: the
            # retry runs now, counted like a real one.
            return self.apply(args=(step_id,), retries=self.request.retries + 1).result
        raise self.retry(exc=exc, countdown=step_retry_delay(self.request.retries)) from exc


@shared_task(
    autoretry_for=(TransientPartnerError,),
    retry_backoff=STEP_BACKOFF_SECONDS,
    retry_backoff_max=STEP_BACKOFF_MAX_SECONDS,
    max_retries=STEP_MAX_RETRIES * 2,
    acks_late=True,
)
def fulfilment_line_release(key: str, msisdn: str) -> None:
    """Compensation: gives a provisioned number back to the network (idempotent by key)."""
    partners.network.line_release(key=key, msisdn=msisdn)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3, acks_late=True)
def recurring_charges_run() -> int:
    """Beat runs this often; each product's period is charged once however often it runs."""
    return recurring_charges_post()
