"""What readiness and the metrics ask of the services the portal runs on: the database,
Redis and the Celery workers. Each read is cheap: one round trip, no table read."""

from celery import current_app
from django.conf import settings
from django.db import connection

from portal.db.redis import client_if_configured


def database_answers() -> None:
    """Raises the database's error if it does not answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def redis_answers() -> bool | None:
    """None without Redis (the embedded mode); raises Redis's error if it does not answer."""
    conn = client_if_configured()
    return None if conn is None else bool(conn.ping())


def tasks_go_to_workers() -> bool:
    """Tasks are queued for Celery workers through a broker, not run in the caller's process."""
    conf = current_app.conf
    return not conf.task_always_eager and not str(conf.broker_url or "").startswith("memory://")


def workers_answering(*, timeout: float) -> int:
    """How many Celery workers answered a ping within ``timeout`` seconds (the first one
    ends the wait)."""
    # A connection of its own, closed here: the reply queue's listener must not outlive the
    # probe (left in the process's pool, it hangs any child the process forks).
    with current_app.connection_for_write() as connection:
        return len(current_app.control.ping(timeout=timeout, limit=1, connection=connection))


def celery_queue_length() -> int | None:
    """Tasks waiting in the default queue, when the broker is Redis (a list per queue)."""
    conn = client_if_configured()
    if conn is None or not str(current_app.conf.broker_url or "").startswith("redis"):
        return None
    return conn.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
