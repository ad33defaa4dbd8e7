"""What operators watch: /health/ (liveness), /ready/ (readiness) and /metrics (Prometheus)."""

import orjson
import pytest
from django.db import OperationalError, connection
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from charging.models import QuotaLogPosition
from charging.quota import store
from portal.celery import app as celery_app
from portal.db.redis import client as redis_client
from tests.charging.quota import quota_store  # noqa: F401  (a fixture)
from tests.factories import MB, LineFactory, data_bucket
from tests.services import redis_url

REMOTE = "203.0.113.7"
ALL_OFF = {"redis": {"status": "off"}, "workers": {"status": "off"}, "quota_log": {"status": "off"}}


@pytest.fixture
def embedded(settings):
    """The embedded mode: no Redis, tasks in this process, no quota store."""
    settings.REDIS_URL = ""
    settings.CHARGING_QUOTA_STORE = False


def scrape(client, **headers) -> dict[tuple, float]:
    answer = client.get("/metrics", **headers)
    assert answer.status_code == 200
    assert answer["Content-Type"] == CONTENT_TYPE_LATEST
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, *sorted(labels.items())), 0)


def log_entries(count: int) -> list[str]:
    """Entries appended to the quota store's log (as a session step would), by id."""
    return [store.client().xadd(store.log_key(), {"e": orjson.dumps({})}).decode() for _ in range(count)]


# --- /health/ -----------------------------------------------------------------------------------


def test_health_answers_anyone_without_touching_the_database(client):
    answer = client.get("/health/", REMOTE_ADDR=REMOTE)  # no database in this test: any query would fail it

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


# --- /ready/ ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_ready_in_the_embedded_mode_checks_the_database_alone(client, embedded):
    answer = client.get("/ready/")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "checks": {"database": {"status": "ok"}, **ALL_OFF}}


@pytest.mark.django_db
def test_ready_answers_503_when_the_database_does_not_answer(client, embedded, monkeypatch):
    def refused():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refused)

    answer = client.get("/ready/")

    assert answer.status_code == 503
    assert answer.json() == {
        "status": "fail",
        "checks": {"database": {"status": "fail", "error": "OperationalError: connection refused"}, **ALL_OFF},
    }


@pytest.mark.django_db
def test_ready_answers_503_when_redis_does_not_answer(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.CHARGING_QUOTA_STORE = False

    answer = client.get("/ready/")

    assert answer.status_code == 503
    assert answer.json()["status"] == "fail"
    assert answer.json()["checks"]["redis"]["status"] == "fail"
    assert answer.json()["checks"]["redis"]["error"].startswith("ConnectionError: ")


@pytest.mark.django_db
def test_ready_answers_503_when_no_worker_answers_the_broker(client, settings):
    settings.REDIS_URL = redis_url()
    settings.READY_WORKER_PING_SECONDS = 0.2
    if not str(celery_app.conf.broker_url).startswith("redis"):
        pytest.skip("the broker is Redis only when REDIS_URL is set as the suite starts")
    celery_app.conf.task_always_eager = False  # tasks go to workers (the suite's fixture puts it back)

    answer = client.get("/ready/")

    assert answer.status_code == 503
    assert answer.json()["checks"]["workers"] == {"status": "fail", "error": "no Celery worker answered within 0.2 s"}


@pytest.mark.django_db
@pytest.mark.usefixtures("quota_store")
def test_ready_reports_the_quota_store_logs_lag_and_fails_past_the_bound(client, settings):
    first, *_ = log_entries(3)
    QuotaLogPosition.objects.create(name=store.prefix(), last_id=first)

    within = client.get("/ready/")
    settings.READY_QUOTA_LOG_LAG_MAX = 1
    past = client.get("/ready/")

    assert within.status_code == 200
    assert within.json()["checks"]["quota_log"] == {"status": "ok", "lag": 2}
    assert past.status_code == 503
    assert past.json()["checks"]["quota_log"] == {"status": "fail", "lag": 2, "error": "more than 1 entries wait"}


# --- Who may ask --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/ready/", "/metrics"])
def test_ready_and_metrics_answer_this_host_asking_directly(client, embedded, path):
    assert client.get(path, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get(path, REMOTE_ADDR="::1").status_code == 200


@pytest.mark.parametrize("path", ["/ready/", "/metrics"])
def test_ready_and_metrics_refuse_another_address(client, path):
    answer = client.get(path, REMOTE_ADDR=REMOTE)

    assert answer.status_code == 403
    assert answer.content == b"Forbidden: ask from this host, or with the operations token.\n"


@pytest.mark.parametrize("path", ["/ready/", "/metrics"])
def test_ready_and_metrics_refuse_what_a_proxy_on_this_host_passes_on(client, path):
    assert client.get(path, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=REMOTE).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/ready/", "/metrics"])
def test_with_a_token_set_ready_and_metrics_answer_whoever_carries_it_and_nobody_else(client, embedded, settings, path):
    settings.OPERATIONS_TOKEN = "s3cret-scraper-token"

    carried = client.get(path, REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer s3cret-scraper-token")
    wrong = client.get(path, REMOTE_ADDR=REMOTE, HTTP_AUTHORIZATION="Bearer guess")
    local_without = client.get(path, REMOTE_ADDR="127.0.0.1")

    assert carried.status_code == 200
    assert wrong.status_code == 403
    assert local_without.status_code == 403


def test_probes_and_scrapers_are_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/health/").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR=REMOTE).status_code == 403  # answered, not redirected
    assert client.get("/accounts/login/").status_code == 301


# --- /metrics -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_count_requests_by_method_and_status_class(client, embedded):
    before = scrape(client)
    client.get("/health/")
    client.get("/health/")
    client.post("/health/")
    client.get("/no-such-page/")
    after = scrape(client)

    def grew(method: str, status: str) -> float:
        return value(after, "portal_http_requests_total", method=method, status=status) - value(
            before, "portal_http_requests_total", method=method, status=status
        )

    assert grew("GET", "2xx") == 3  # the two health checks and the first scrape
    assert grew("POST", "4xx") == 1  # health answers GET alone: 405
    assert grew("GET", "4xx") == 1


@pytest.mark.django_db
def test_metrics_count_online_charging_requests_answered(client, embedded, usage_poster):
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 100 * MB)
    start = {"session_id": "s-1", "msisdn": line.msisdn, "service": "data", "requested_units": 30 * MB}
    before = scrape(client)

    started = usage_poster.post("/api/chargingSession/", start, format="json")
    repeated_out_of_order = usage_poster.post(
        "/api/chargingSession/s-1/terminate/", {"request_number": 5, "used_units": MB}, format="json"
    )
    after = scrape(client)

    def grew(operation: str, status: str) -> float:
        name = "portal_online_charging_requests_total"
        return value(after, name, operation=operation, status=status) - value(
            before, name, operation=operation, status=status
        )

    assert started.status_code == 201
    assert repeated_out_of_order.status_code == 409
    assert grew("session-start", "2xx") == 1
    assert grew("session-terminate", "4xx") == 1


@pytest.mark.django_db
def test_metrics_count_usage_records_charged(client, usage_poster, django_capture_on_commit_callbacks):
    line = LineFactory(msisdn="31611111111")
    data_bucket(line, 100 * MB)
    record = {"msisdn": line.msisdn, "service": "data", "quantity": MB}
    before = value(scrape(client), "portal_usage_records_charged_total")

    with django_capture_on_commit_callbacks(execute=True):
        usage_poster.post("/api/usage/", {**record, "external_id": "one"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        records = [{**record, "external_id": f"many-{n}"} for n in range(3)]
        usage_poster.post("/api/usage/bulk/", {"records": [*records, {**record, "quantity": -1}]}, format="json")

    assert value(scrape(client), "portal_usage_records_charged_total") - before == 4


@pytest.mark.django_db
def test_metrics_show_the_celery_queue_length(client, settings):
    settings.REDIS_URL = redis_url()
    if not str(celery_app.conf.broker_url).startswith("redis"):
        pytest.skip("the broker is Redis only when REDIS_URL is set as the suite starts")
    settings.CELERY_TASK_DEFAULT_QUEUE = "test-operations-queue"
    redis_client().delete("test-operations-queue")
    redis_client().rpush("test-operations-queue", "a", "b", "c")
    try:
        samples = scrape(client)
    finally:
        redis_client().delete("test-operations-queue")

    assert value(samples, "portal_celery_queue_length") == 3


@pytest.mark.django_db
@pytest.mark.usefixtures("quota_store")
def test_metrics_show_the_quota_store_logs_lag(client):
    first, *_ = log_entries(4)
    QuotaLogPosition.objects.create(name=store.prefix(), last_id=first)

    assert value(scrape(client), "portal_quota_log_lag") == 3


@pytest.mark.django_db
def test_metrics_leave_out_what_is_not_running(client, embedded):
    samples = scrape(client)

    assert not any(name in {"portal_celery_queue_length", "portal_quota_log_lag"} for name, *_ in samples)
