"""Workers and the server keep their start-up heap out of the garbage collector's walks."""

import gc

import pytest
from celery import signals

import portal.celery  # noqa: F401  (connects the worker signals)


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process goes on as it was


@pytest.mark.parametrize("signal", [signals.worker_ready, signals.worker_process_init], ids=lambda s: s.name)
def test_a_celery_worker_freezes_what_it_loaded_once_ready(unfrozen, signal):
    assert gc.get_freeze_count() == 0
    signal.send(sender=None)
    assert gc.get_freeze_count() > 0
