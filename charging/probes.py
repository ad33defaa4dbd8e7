"""What readiness and the metrics ask of charging: how far the quota store's log lags."""

from charging.models import QuotaLogPosition
from charging.quota import quota_store_enabled, store

# Applied entries are trimmed from the stream right after their batch commits, so only a
# trim that failed leaves more than one batch of them behind; counting past this many is
# not worth a slow read.
_APPLIED_LEFT_COUNTED = 10_000


def quota_log_lag() -> int | None:
    """Entries in the quota store's log not applied to the database yet; None when the store
    is off. One indexed row and two Redis calls."""
    if not quota_store_enabled():
        return None
    position = QuotaLogPosition.objects.filter(name=store.prefix()).values_list("last_id", flat=True).first()
    conn, key = store.client(), store.log_key()
    length = conn.xlen(key)
    if not length or position is None:
        return length
    applied = conn.xrange(key, min="-", max=position, count=_APPLIED_LEFT_COUNTED)
    return length - len(applied)
