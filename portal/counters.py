"""Counters shared by every process of a deployment, for the operators' metrics.

With Redis they live in one hash, so what Celery workers count reaches the server that
answers ``/metrics``; in the embedded mode (no Redis) every task runs in the server's own
process, so a dictionary of this process is the whole count.
"""

from collections import Counter

from django.conf import settings

from portal.db.redis import client_if_configured

USAGE_RECORDS_CHARGED = "usage_records_charged"

_in_process: Counter[str] = Counter()


def _key() -> str:
    return f"{getattr(settings, 'CHANNELS_PREFIX', 'portal')}:counters"


def counter_add(*, name: str, by: int = 1) -> None:
    conn = client_if_configured()
    if conn is None:
        _in_process[name] += by
    else:
        conn.hincrby(_key(), name, by)


def counters_read() -> dict[str, int]:
    """Every counter's total so far."""
    conn = client_if_configured()
    if conn is None:
        return dict(_in_process)
    return {name.decode(): int(value) for name, value in conn.hgetall(_key()).items()}
