import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from portal.asgi import application
from portal.selfcare.consumers import CLOSE_UNAUTHENTICATED
from tests.factories import MB, LineFactory, data_bucket
from tests.livetools import data_charged, until_ready, websocket_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user=None) -> tuple[WebsocketCommunicator, bool, int | None]:
    headers = await database_sync_to_async(websocket_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_socket_refuses_an_anonymous_user():
    communicator, connected, code = await connect()

    assert not connected
    assert code == CLOSE_UNAUTHENTICATED


async def test_socket_refuses_someone_elses_line_and_sends_nothing_of_it():
    mine = await database_sync_to_async(LineFactory)()
    theirs = await database_sync_to_async(LineFactory)()
    await database_sync_to_async(data_bucket)(theirs, 10 * MB)
    user = await database_sync_to_async(lambda: mine.billing_account.customer.user)()
    communicator, connected, _ = await connect(user)
    assert connected
    ready, states = await until_ready(communicator)
    assert (ready["lines"], ready["cost_centres"]) == ([mine.pk], [])
    assert {s["type"] for s in states} == {"line.changed", "account.changed"}

    await communicator.send_json_to({"action": "subscribe", "line": theirs.pk})
    answer = await communicator.receive_json_from()
    await database_sync_to_async(data_charged)(theirs, "theirs-1", MB)

    assert answer == {"type": "error", "code": "not_found", "line": theirs.pk}
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_owner_receives_the_new_balance_when_a_charge_commits():
    line = await database_sync_to_async(LineFactory)()
    bucket = await database_sync_to_async(data_bucket)(line, 10 * MB)
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    communicator, connected, _ = await connect(user)
    assert connected
    await until_ready(communicator)

    await database_sync_to_async(data_charged)(line, "mine-1", 3 * MB)
    message = await communicator.receive_json_from(timeout=2)

    assert message["type"] == "line.changed"
    assert message["line"] == line.pk
    assert [(b["id"], b["remaining"], b["display"]) for b in message["buckets"]] == [(bucket.pk, 7 * MB, "7.0 MB")]
    await communicator.disconnect()


async def test_a_manager_sees_charges_below_their_cost_centre_and_nothing_of_other_branches():
    from enterprise.models import ManagerAssignment
    from enterprise.services import cost_centre_create
    from tests.charging.trees import company_tree, limit_on
    from tests.factories import UserFactory

    def build():
        tree = company_tree(lines=1)
        limit_on(tree.team, 50 * MB)
        limit_on(tree.division, 80 * MB)
        other_team = cost_centre_create(parent=tree.division, name="South", kind="team")
        manager, outsider = UserFactory(), UserFactory()
        ManagerAssignment.objects.create(user=manager, node=tree.division)
        ManagerAssignment.objects.create(user=outsider, node=other_team)
        return tree, manager, outsider

    tree, manager, outsider = await database_sync_to_async(build)()
    watching, _, _ = await connect(manager)
    elsewhere, _, _ = await connect(outsider)
    ready, _ = await until_ready(watching)
    await until_ready(elsewhere)

    await database_sync_to_async(data_charged)(tree.lines[0], "ev-team", 10 * MB)

    pushed = await watching.receive_json_from(timeout=2)
    assert ready["cost_centres"] == [tree.division.pk]
    assert pushed["type"] == "node.changed"
    assert pushed["node"] == tree.division.pk
    assert await elsewhere.receive_nothing(timeout=0.3)
    await watching.disconnect()
    await elsewhere.disconnect()


async def test_a_top_up_reaches_the_account_owner_and_no_one_else():
    from decimal import Decimal

    from charging.services import money_post

    mine = await database_sync_to_async(LineFactory)()
    theirs = await database_sync_to_async(LineFactory)()
    owner = await database_sync_to_async(lambda: mine.billing_account.customer.user)()
    stranger = await database_sync_to_async(lambda: theirs.billing_account.customer.user)()
    watching, _, _ = await connect(owner)
    elsewhere, _, _ = await connect(stranger)
    await until_ready(watching)
    await until_ready(elsewhere)

    def top_up():
        with transaction.atomic():
            money_post(billing_account=mine.billing_account, amount=Decimal("15"), kind="topup", reason="Top-up")

    await database_sync_to_async(top_up)()

    pushed = await watching.receive_json_from(timeout=2)
    assert pushed.pop("seq") > 0
    assert pushed == {
        "type": "account.changed",
        "account": mine.billing_account_id,
        "money": {"account": mine.billing_account_id, "amount": "15.0000", "display": "€15.00"},
    }
    assert await elsewhere.receive_nothing(timeout=0.3)
    await watching.disconnect()
    await elsewhere.disconnect()


async def test_a_push_that_never_arrived_is_made_good_at_the_next_heartbeats(settings):
    from charging.live import line_group
    from charging.models import Bucket
    from charging.watchers import watched_sequences

    settings.LIVE_HEARTBEAT_SECONDS = 0.2
    line = await database_sync_to_async(LineFactory)()
    bucket = await database_sync_to_async(data_bucket)(line, 10 * MB)
    user = await database_sync_to_async(lambda: line.billing_account.customer.user)()
    communicator, _, _ = await connect(user)
    await until_ready(communicator)

    def lost_push():
        # A charge's push numbered and then dropped on its way (a process that fell behind).
        Bucket.objects.filter(pk=bucket.pk).update(remaining=4 * MB)
        watched_sequences([line_group(line.pk)])

    await database_sync_to_async(lost_push)()
    # Within a few heartbeats (a push numbered at one beat has until the next to arrive).
    received = [await communicator.receive_json_from(timeout=2) for _ in range(4)]
    caught_up = next(message for message in received if message["type"] != "heartbeat")

    assert (caught_up["type"], caught_up["line"]) == ("line.changed", line.pk)
    assert caught_up["buckets"][0]["remaining"] == 4 * MB
    await communicator.disconnect()
