"""A fulfilment step that meets a transient partner error asks Celery for a retry, waiting
longer each time up to a bound (exercised as a worker would run it, not eagerly)."""

import pytest
from celery.canvas import Signature
from celery.exceptions import Retry

from catalog.adapters import TRANSIENT
from catalog.models import Channel, FulfilmentStep
from catalog.services import cart_item_add, order_place
from catalog.tasks import STEP_BACKOFF_MAX_SECONDS, STEP_MAX_RETRIES, fulfilment_step_run, step_retry_delay
from tests.catalog.factories import cart_for, shop


def test_the_step_retry_delay_doubles_from_two_seconds_up_to_five_minutes():
    assert [step_retry_delay(attempt) for attempt in range(11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert step_retry_delay(50) == STEP_BACKOFF_MAX_SECONDS


@pytest.fixture
def pending_provision(django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=s["plan"])
    with django_capture_on_commit_callbacks(execute=False):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    return order.steps.get(kind=FulfilmentStep.Kind.PROVISION)


@pytest.fixture
def sent(monkeypatch):
    """Retries Celery would send to the broker, captured instead of sent."""
    signatures = []
    monkeypatch.setattr(Signature, "apply_async", lambda sig, *args, **kwargs: signatures.append(sig))
    return signatures


def run_as_worker(step_id, *, retries):
    fulfilment_step_run.push_request(
        id=f"step-{step_id}-{retries}", args=[step_id], kwargs={}, retries=retries, called_directly=False
    )
    try:
        return fulfilment_step_run.run(step_id)
    finally:
        fulfilment_step_run.pop_request()


@pytest.mark.django_db
@pytest.mark.parametrize("retries", range(STEP_MAX_RETRIES))
def test_a_transiently_failing_step_asks_for_a_retry_after_the_backoff_delay(
    pending_provision, sent, simulated_partners, retries
):
    simulated_partners["network"].script.append(TRANSIENT)

    with pytest.raises(Retry) as retry:
        run_as_worker(pending_provision.pk, retries=retries)

    assert retry.value.when == step_retry_delay(retries)
    assert not retry.value.is_eager
    [signature] = sent
    assert signature.task == fulfilment_step_run.name
    assert tuple(signature.args) == (pending_provision.pk,)
    assert signature.options["countdown"] == step_retry_delay(retries)
    assert signature.options["retries"] == retries + 1
    pending_provision.refresh_from_db()
    assert (pending_provision.state, pending_provision.attempts) == (FulfilmentStep.State.RUNNING, 1)
    assert "did not answer in time" in pending_provision.last_error


@pytest.mark.django_db
def test_a_step_still_failing_at_the_retry_bound_fails_without_another_retry(
    pending_provision, sent, simulated_partners
):
    simulated_partners["network"].script.append(TRANSIENT)

    state = run_as_worker(pending_provision.pk, retries=STEP_MAX_RETRIES)

    assert state == FulfilmentStep.State.FAILED
    assert sent == []
    pending_provision.refresh_from_db()
    assert pending_provision.state == FulfilmentStep.State.FAILED
    assert pending_provision.last_error == "gave up after 6 attempts: network did not answer in time"
