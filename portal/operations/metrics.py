"""The portal's Prometheus metrics (prometheus_client), and what counts them.

Counted by this process as it goes: the HTTP requests it answered (by method and status
class), the online charging requests among them, its open websockets. Read at each scrape,
one round trip each: usage records charged (counted by whichever process charged them,
``portal.counters``), the Celery queue's length and the quota store log's lag.
"""

import logging
from functools import cache

from asgiref.sync import iscoroutinefunction
from django.db import DatabaseError
from django.utils.decorators import sync_and_async_middleware
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import RedisError

from charging.probes import quota_log_lag
from portal.counters import USAGE_RECORDS_CHARGED, counters_read
from portal.probes import celery_queue_length

logger = logging.getLogger(__name__)

disable_created_metrics()  # a counter's creation time as a series of its own is noise here
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The charging API's routes are named charging-<operation> (charging/api/urls.py).
ONLINE_ROUTE_PREFIX = "charging-"

HTTP_REQUESTS = Counter(
    "portal_http_requests",
    "HTTP requests this process answered, by method and status class.",
    ["method", "status"],
    registry=REGISTRY,
)
ONLINE_REQUESTS = Counter(
    "portal_online_charging_requests",
    "Online charging requests (sessions and single events) this process answered, by operation and status class.",
    ["operation", "status"],
    registry=REGISTRY,
)
OPEN_WEBSOCKETS = Gauge("portal_websockets_open", "Websockets this process holds open.", registry=REGISTRY)


def request_count(*, method: str, status_code: int, route: str | None) -> None:
    status = f"{status_code // 100}xx"
    _counter(HTTP_REQUESTS, method if method in METHODS else "other", status).inc()
    if route and route.startswith(ONLINE_ROUTE_PREFIX):
        _counter(ONLINE_REQUESTS, route.removeprefix(ONLINE_ROUTE_PREFIX), status).inc()


@cache
def _counter(metric: Counter, *labels: str) -> Counter:
    """The counter of one set of labels, looked up once (a lookup costs more than the count)."""
    return metric.labels(*labels)


@sync_and_async_middleware
def requests_counted(get_response):
    """Middleware (first in the list, so it sees every answer, redirects included)."""

    def count(request, response) -> None:
        match = getattr(request, "resolver_match", None)
        request_count(method=request.method, status_code=response.status_code, route=match and match.url_name)

    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            count(request, response)
            return response

    else:

        def middleware(request):
            response = get_response(request)
            count(request, response)
            return response

    return middleware


class WebsocketsCounted:
    """ASGI middleware: counts the websockets accepted and not yet closed."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        accepted = False

        async def counting_send(message):
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                OPEN_WEBSOCKETS.inc()
            await send(message)

        try:
            return await self.app(scope, receive, counting_send)
        finally:
            if accepted:
                OPEN_WEBSOCKETS.dec()


class _SharedState(Collector):
    """Read at each scrape; a source that does not answer is left out (``/ready/`` says why)."""

    def collect(self):
        try:
            charged = counters_read().get(USAGE_RECORDS_CHARGED, 0)
            yield CounterMetricFamily(
                "portal_usage_records_charged", "Usage records charged, by every process.", value=charged
            )
            length = celery_queue_length()
            if length is not None:
                yield GaugeMetricFamily(
                    "portal_celery_queue_length", "Tasks waiting in the Celery queue.", value=length
                )
        except RedisError:
            logger.warning("metrics: Redis did not answer", exc_info=True)
        try:
            lag = quota_log_lag()
            if lag is not None:
                yield GaugeMetricFamily(
                    "portal_quota_log_lag", "Quota store log entries not applied to the database yet.", value=lag
                )
        except (RedisError, DatabaseError):
            logger.warning("metrics: the quota store's log could not be read", exc_info=True)


REGISTRY.register(_SharedState())


def metrics_text() -> bytes:
    return generate_latest(REGISTRY)
