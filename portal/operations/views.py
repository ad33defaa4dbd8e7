"""Liveness, readiness and metrics for operators (README, "Operating it").

``/health/`` answers whoever asks and touches nothing: the process is up. ``/ready/`` and
``/metrics`` tell more, so they answer only the loopback address asking directly (no proxy in
between), or, when ``OPERATIONS_TOKEN`` is set, only a request that carries it
(``Authorization: Bearer <token>``).
"""

import ipaddress
import logging
import secrets

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST
from redis import RedisError

from charging.probes import quota_log_lag
from portal.operations.metrics import metrics_text
from portal.probes import database_answers, redis_answers, tasks_go_to_workers, workers_answering

logger = logging.getLogger(__name__)

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def operator_allowed(request: HttpRequest) -> bool:
    token = settings.OPERATIONS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {token}".encode())
    if any(header in request.META for header in FORWARDED_HEADERS):
        return False  # a proxy on this host passes on requests from anywhere
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _refused() -> HttpResponse:
    return HttpResponse(
        "Forbidden: ask from this host, or with the operations token.\n", status=403, content_type="text/plain"
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def ready(request: HttpRequest) -> HttpResponse:
    if not operator_allowed(request):
        return _refused()
    checks = {
        "database": _check(_database),
        "redis": _check(_redis),
        "workers": _check(_workers),
        "quota_log": _check(_quota_log),
    }
    ok = all(check["status"] != "fail" for check in checks.values())
    return JsonResponse({"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not operator_allowed(request):
        return _refused()
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def _check(probe) -> dict:
    """A probe's answer: ``ok`` (with what it saw), ``off`` (not configured) or ``fail``."""
    try:
        return probe()
    except (DatabaseError, RedisError, OSError) as error:
        logger.warning("readiness: %s did not answer", probe.__name__.strip("_"), exc_info=True)
        return {"status": "fail", "error": f"{type(error).__name__}: {error}"}


def _database() -> dict:
    database_answers()
    return {"status": "ok"}


def _redis() -> dict:
    return {"status": "off"} if redis_answers() is None else {"status": "ok"}


def _workers() -> dict:
    if not tasks_go_to_workers():
        return {"status": "off"}
    timeout = settings.READY_WORKER_PING_SECONDS
    if not workers_answering(timeout=timeout):
        return {"status": "fail", "error": f"no Celery worker answered within {timeout} s"}
    return {"status": "ok"}


def _quota_log() -> dict:
    lag = quota_log_lag()
    if lag is None:
        return {"status": "off"}
    if lag > settings.READY_QUOTA_LOG_LAG_MAX:
        return {"status": "fail", "lag": lag, "error": f"more than {settings.READY_QUOTA_LOG_LAG_MAX} entries wait"}
    return {"status": "ok", "lag": lag}
