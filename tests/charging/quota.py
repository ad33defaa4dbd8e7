"""The quota store switched on for a test, on keys of its own that are removed afterwards."""

import uuid

import pytest

from charging.quota import store
from charging.quota.log import log_apply
from charging.quota.slices import slices_mismatches, slices_return
from tests.services import redis_url


@pytest.fixture
def quota_store(settings):
    """Online sessions go through the quota store; call ``settle_store()`` to apply its log and
    hand every free slice back, as the worker and beat would."""
    settings.REDIS_URL = redis_url()
    settings.CHARGING_QUOTA_STORE = True
    settings.CHARGING_QUOTA_PREFIX = f"test-quota-{uuid.uuid4().hex[:12]}"
    settings.CHARGING_QUOTA_VOLATILE_REDIS = True  # the test Redis keeps no append-only file
    yield
    store.quota_store_clear()


def settle_store() -> None:
    """Checks that every slice is accounted for (free, held by a session, or settled in the
    log), applies the log, hands the slices back and checks again."""
    assert slices_mismatches() == []
    log_apply()
    assert slices_mismatches() == []
    slices_return()
    assert slices_mismatches() == []
