"""Workers and the server keep their start-up heap out of the garbage collector's walks, and
collect young objects less often."""

import gc

import pytest
from celery import signals

import portal.celery  # noqa: F401  (connects the worker signals)
from portal.heap import YOUNG_COLLECTION_EVERY


@pytest.fixture
def untuned():
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process goes on as it was
    gc.set_threshold(*thresholds)


@pytest.mark.parametrize("signal", [signals.worker_ready, signals.worker_process_init], ids=lambda s: s.name)
def test_a_celery_worker_tunes_the_collector_once_ready(untuned, signal):
    assert gc.get_freeze_count() == 0
    signal.send(sender=None)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
