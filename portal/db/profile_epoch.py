"""The epoch of the quota store's cached line profiles.

A line's profile (what its online sessions may draw on) is built from rows of every app: the
line and its holds, its rate plan, allowances, limits, the cost-centre tree, steering rules.
The store keeps it in Redis under this epoch; a service that changes any of those rows moves
the epoch after commit, and every profile is read afresh. It lives below every app so that
accounts and enterprise services can move it without importing charging, which reads it.
"""

from django.conf import settings
from django.db import transaction

from portal.db.redis import client


def quota_store_enabled() -> bool:
    return bool(getattr(settings, "CHARGING_QUOTA_STORE", False)) and bool(getattr(settings, "REDIS_URL", ""))


def quota_prefix() -> str:
    return getattr(settings, "CHARGING_QUOTA_PREFIX", "quota")


def profiles_epoch_key() -> str:
    return f"{quota_prefix()}:epoch"


def profiles_forget() -> None:
    """Every profile is read afresh from now on (after the transaction, if in one)."""
    if quota_store_enabled():
        transaction.on_commit(lambda: client().incr(profiles_epoch_key()))
