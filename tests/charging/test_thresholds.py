import asyncio
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction
from django.utils import timezone

from charging.models import Bucket, NodeLimit, ThresholdNotice
from charging.services import bucket_grant
from charging.tasks import notify_customer
from charging.thresholds import thresholds_check
from charging.units import Unit
from enterprise.models import CostCentre, ManagerAssignment
from enterprise.services import company_create, cost_centre_create
from portal.asgi import application
from portal.models import ContactPreferences, Notification
from tests.factories import GB, BillingAccountFactory, CustomerFactory, LineFactory, UserFactory, data_bucket
from tests.livetools import until_ready, websocket_headers
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


class RecordingSmsGateway:
    sent: list[tuple[str, str]] = []

    def send(self, *, msisdn: str, text: str) -> None:
        self.sent.append((msisdn, text))


def use(bucket, used: int):
    """Moves a bucket to ``used`` units the way the engine leaves it (row saved)."""
    bucket.remaining = bucket.initial - used
    bucket.save(update_fields=["remaining"])
    return bucket


def line_with_data(*, channel=ContactPreferences.Channel.EMAIL, **preferences):
    line = LineFactory(billing_account__customer__email="owner@example.com")
    ContactPreferences.objects.filter(customer=line.billing_account.customer).update(
        preferred_channel=channel, **preferences
    )
    return line, data_bucket(line, 10 * GB)


def company_tree():
    """Acme (root) -> Sales -> Field, and Ops beside Sales; a manager on each node."""
    customer = CustomerFactory(name="Acme", email="acme@example.com")
    BillingAccountFactory(customer=customer)
    company = company_create(customer=customer, name="Acme")
    root = CostCentre.objects.get(company=company, parent=None)
    sales = cost_centre_create(parent=root, name="Sales", kind=CostCentre.Kind.DIVISION)
    ops = cost_centre_create(parent=root, name="Ops", kind=CostCentre.Kind.DIVISION)
    field = cost_centre_create(parent=sales, name="Field", kind=CostCentre.Kind.TEAM)
    managers = {}
    for node in (root, sales, ops, field):
        node.refresh_from_db()
        managers[node.name] = UserFactory()
        ManagerAssignment.objects.create(user=managers[node.name], node=node)
    # The root's manager also manages Sales: still told once.
    ManagerAssignment.objects.create(user=managers["Acme"], node=sales)
    return customer, {"Acme": root, "Sales": sales, "Ops": ops, "Field": field}, managers


def subscribe(group: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def received(channel: str) -> list[dict]:
    async def drain():
        layer = get_channel_layer()
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), 0.05))
            except TimeoutError:
                return messages

    return async_to_sync(drain)()


def test_line_bucket_notices_50_80_100_exactly_once_each():
    _, bucket = line_with_data()
    now = timezone.now()

    first = thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=now)
    second = thresholds_check(buckets=[use(bucket, 10 * GB * 85 // 100)], limits=[], at=now)
    third = thresholds_check(buckets=[use(bucket, 10 * GB)], limits=[], at=now)
    again = thresholds_check(buckets=[bucket], limits=[], at=now)

    assert [n.percent for n in first] == [50]
    assert [n.percent for n in second] == [80]
    assert [n.percent for n in third] == [100]
    assert again == []
    assert sorted(
        ThresholdNotice.objects.filter(bucket=bucket).values_list("percent", "used", "of", "period_start")
    ) == [
        (50, 5 * GB, 10 * GB, bucket.valid_from),
        (80, 10 * GB * 85 // 100, 10 * GB, bucket.valid_from),
        (100, 10 * GB, 10 * GB, bucket.valid_from),
    ]


def test_below_the_first_threshold_nothing_is_noticed():
    _, bucket = line_with_data()

    assert thresholds_check(buckets=[use(bucket, 5 * GB - 1)], limits=[], at=timezone.now()) == []
    assert ThresholdNotice.objects.count() == 0


def test_setting_overrides_the_bucket_thresholds(settings):
    settings.CHARGING_THRESHOLDS = [90]
    _, bucket = line_with_data()

    notices = thresholds_check(buckets=[use(bucket, 95 * GB // 10)], limits=[], at=timezone.now())

    assert [n.percent for n in notices] == [90]


def test_limit_notices_go_to_the_company_customer_and_managers_of_the_node_and_its_ancestors(
    django_capture_on_commit_callbacks, mailoutbox
):
    customer, nodes, managers = company_tree()
    limit = NodeLimit.objects.create(node=nodes["Field"], unit=Unit.BYTES, limit=10 * GB, used=8 * GB)

    with django_capture_on_commit_callbacks(execute=True):
        notices = thresholds_check(buckets=[], limits=[limit], at=timezone.now())

    assert [n.percent for n in notices] == [50, 80]
    expected = {
        (
            customer.pk,
            user_id,
            f"threshold:{notice.pk}",
            f"Your Field data limit is {notice.percent}% used: 8.00 GB of 10.00 GB",
        )
        for notice in notices
        for user_id in (None, managers["Acme"].pk, managers["Sales"].pk, managers["Field"].pk)
    }
    rows = Notification.objects.values_list("customer_id", "user_id", "kind", "subject")
    assert len(rows) == 8
    assert set(rows) == expected
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        ["acme@example.com"] * 2 + [managers[name].email for name in ("Acme", "Sales", "Field") for _ in range(2)]
    )


def test_notify_customer_again_sends_nothing(django_capture_on_commit_callbacks, mailoutbox):
    _, bucket = line_with_data()
    with django_capture_on_commit_callbacks(execute=True):
        [notice] = thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        again = notify_customer(notice.pk)

    assert again == 0
    assert Notification.objects.filter(kind=f"threshold:{notice.pk}").count() == 1
    assert len(mailoutbox) == 1


def test_a_new_limit_period_notices_again():
    _, nodes, _ = company_tree()
    first_start = timezone.now() - timedelta(days=30)
    limit = NodeLimit.objects.create(
        node=nodes["Sales"], unit=Unit.BYTES, limit=10 * GB, used=6 * GB, period_start=first_start
    )
    thresholds_check(buckets=[], limits=[limit], at=timezone.now())

    new_start = timezone.now()
    limit.period_start, limit.used = new_start, 5 * GB
    limit.save(update_fields=["period_start", "used"])
    notices = thresholds_check(buckets=[], limits=[limit], at=timezone.now())
    again = thresholds_check(buckets=[], limits=[limit], at=timezone.now())

    assert [(n.percent, n.period_start) for n in notices] == [(50, new_start)]
    assert again == []
    assert sorted(ThresholdNotice.objects.filter(limit=limit).values_list("percent", "period_start")) == [
        (50, first_start),
        (50, new_start),
    ]


def test_email_channel_sends_the_notice_with_its_exact_subject(django_capture_on_commit_callbacks, mailoutbox):
    line, bucket = line_with_data(notification_email="alerts@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        thresholds_check(buckets=[use(bucket, 8 * GB)], limits=[], at=timezone.now())

    assert sorted((m.subject, tuple(m.to)) for m in mailoutbox) == [
        ("Your Data allowance is 50% used: 8.00 GB of 10.00 GB", ("alerts@example.com",)),
        ("Your Data allowance is 80% used: 8.00 GB of 10.00 GB", ("alerts@example.com",)),
    ]
    assert sorted(Notification.objects.values_list("customer_id", "channel", "status")) == [
        (line.billing_account.customer_id, "email", "sent"),
        (line.billing_account.customer_id, "email", "sent"),
    ]


def test_email_without_an_address_is_marked_failed(django_capture_on_commit_callbacks, mailoutbox):
    line = LineFactory(billing_account__customer__email="")
    bucket = data_bucket(line, 10 * GB)

    with django_capture_on_commit_callbacks(execute=True):
        thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    assert mailoutbox == []
    assert list(Notification.objects.values_list("channel", "status", "sent_at")) == [("email", "failed", None)]


def test_web_channel_stores_the_notification_and_sends_no_mail(django_capture_on_commit_callbacks, mailoutbox):
    line, bucket = line_with_data(channel=ContactPreferences.Channel.WEB)

    with django_capture_on_commit_callbacks(execute=True):
        thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    assert mailoutbox == []
    assert list(Notification.objects.values_list("customer_id", "channel", "status", "subject")) == [
        (line.billing_account.customer_id, "web", "sent", "Your Data allowance is 50% used: 5.00 GB of 10.00 GB")
    ]


def test_usage_alerts_off_stores_a_web_notification_only(django_capture_on_commit_callbacks, mailoutbox):
    _, bucket = line_with_data(usage_alerts=False)

    with django_capture_on_commit_callbacks(execute=True):
        thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    assert mailoutbox == []
    assert list(Notification.objects.values_list("channel", "status")) == [("web", "sent")]


def test_sms_channel_goes_through_the_configured_gateway(settings, django_capture_on_commit_callbacks, mailoutbox):
    settings.PORTAL_SMS_GATEWAY = f"{__name__}.RecordingSmsGateway"
    RecordingSmsGateway.sent = []
    _, bucket = line_with_data(channel=ContactPreferences.Channel.SMS, notification_msisdn="31612345678")

    with django_capture_on_commit_callbacks(execute=True):
        thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    assert mailoutbox == []
    assert RecordingSmsGateway.sent == [
        ("31612345678", "Your Data allowance is 50% used: 5.00 GB of 10.00 GB.\n\nSee your usage in the portal.")
    ]
    assert list(Notification.objects.values_list("channel", "status")) == [("sms", "sent")]


def test_nothing_leaves_before_commit(django_capture_on_commit_callbacks, mailoutbox):
    line, bucket = line_with_data()
    channel = subscribe(f"line.{line.pk}")

    with django_capture_on_commit_callbacks() as callbacks:
        thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    assert len(callbacks) == 2
    assert received(channel) == []
    assert mailoutbox == []
    assert Notification.objects.count() == 0


def test_line_bucket_push_reaches_the_line_group(django_capture_on_commit_callbacks):
    line, bucket = line_with_data()
    channel = subscribe(f"line.{line.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        [notice] = thresholds_check(buckets=[use(bucket, 5 * GB)], limits=[], at=timezone.now())

    assert received(channel) == [
        {
            "type": "threshold.crossed",
            "notice": {
                "id": notice.pk,
                "percent": 50,
                "name": "Data",
                "used": 5 * GB,
                "of": 10 * GB,
                "unit": "bytes",
                "text": "Your Data allowance is 50% used: 5.00 GB of 10.00 GB",
            },
        }
    ]


def test_pool_bucket_push_reaches_its_node_and_ancestors_only(django_capture_on_commit_callbacks):
    _, nodes, _ = company_tree()
    pool = bucket_grant(cost_centre=nodes["Sales"], name="Sales pool", unit=Unit.BYTES, quantity=10 * GB)
    channels = {name: subscribe(f"node.{node.pk}") for name, node in nodes.items()}

    with django_capture_on_commit_callbacks(execute=True):
        [notice] = thresholds_check(buckets=[use(pool, 5 * GB)], limits=[], at=timezone.now())

    message = {
        "type": "threshold.crossed",
        "notice": {
            "id": notice.pk,
            "percent": 50,
            "name": "Sales pool",
            "used": 5 * GB,
            "of": 10 * GB,
            "unit": "bytes",
            "text": "Your Sales pool allowance is 50% used: 5.00 GB of 10.00 GB",
        },
    }
    assert {name: received(channel) for name, channel in channels.items()} == {
        "Acme": [message],
        "Sales": [message],
        "Ops": [],
        "Field": [],
    }


@pytest.mark.django_db(transaction=True)
async def test_line_owner_socket_receives_the_crossing_when_the_charge_commits():
    line, bucket = await database_sync_to_async(line_with_data)(channel=ContactPreferences.Channel.WEB)
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    headers = await database_sync_to_async(websocket_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    await until_ready(communicator)

    def charge():
        with transaction.atomic():
            return thresholds_check(buckets=[use(bucket, 8 * GB)], limits=[], at=timezone.now())

    notices = await database_sync_to_async(charge)()
    messages = [await communicator.receive_json_from(timeout=2) for _ in notices]

    assert messages == [
        {
            "type": "threshold.crossed",
            "id": n.pk,
            "percent": n.percent,
            "name": "Data",
            "used": 8 * GB,
            "of": 10 * GB,
            "unit": "bytes",
            "text": f"Your Data allowance is {n.percent}% used: 8.00 GB of 10.00 GB",
        }
        for n in notices
    ]
    assert [n.percent for n in notices] == [50, 80]
    await communicator.disconnect()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_checks_notice_and_notify_each_crossing_once():
    require_postgres()
    _, bucket = line_with_data(channel=ContactPreferences.Channel.WEB)
    use(bucket, 10 * GB)
    barrier = threading.Barrier(8)
    results: list[object] = [None] * 8

    def check(index: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                fresh = Bucket.objects.get(pk=bucket.pk)
                results[index] = [n.percent for n in thresholds_check(buckets=[fresh], limits=[], at=timezone.now())]
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread met
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=check, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(p for r in results for p in r) == [50, 80, 100]
    assert sorted(ThresholdNotice.objects.values_list("percent", flat=True)) == [50, 80, 100]
    assert sorted(Notification.objects.values_list("subject", flat=True)) == [
        "Your Data allowance is 100% used: 10.00 GB of 10.00 GB",
        "Your Data allowance is 50% used: 10.00 GB of 10.00 GB",
        "Your Data allowance is 80% used: 10.00 GB of 10.00 GB",
    ]
