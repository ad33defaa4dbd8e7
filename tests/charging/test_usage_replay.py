"""Replaying rejected usage records is an agent's act: each replay keeps who, why and what came of it."""

import pytest

from charging.models import UsageEvent, UsageEventReplay
from charging.usage_events import usage_event_ingest
from tests.factories import MB, LineFactory, UserFactory, data_bucket

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/charging/usageevent/"


def rejected(msisdn: str, external_id: str) -> UsageEvent:
    event, _ = usage_event_ingest(
        payload={"external_id": external_id, "msisdn": msisdn, "service": "data", "quantity": MB}
    )
    assert event.status == UsageEvent.Status.REJECTED
    return event


def test_an_agents_replay_records_who_replayed_why_and_what_came_of_it(client, django_capture_on_commit_callbacks):
    agent = UserFactory(username="agent-ann", is_staff=True, is_superuser=True)
    client.force_login(agent)
    fixed, still_wrong = rejected("31611110001", "late-1"), rejected("31611110002", "late-2")
    line = LineFactory(msisdn="31611110001")  # the number was provisioned late
    bucket = data_bucket(line, 5 * MB)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            CHANGELIST,
            {
                "action": "replay",
                "_selected_action": [fixed.pk, still_wrong.pk],
                "reason": "Numbers provisioned late",
                "confirm": "1",
            },
        )

    assert response.status_code == 302
    replays = UsageEventReplay.objects.order_by("event_id")
    assert [(r.event_id, r.actor, r.reason) for r in replays] == [
        (fixed.pk, agent, "Numbers provisioned late"),
        (still_wrong.pk, agent, "Numbers provisioned late"),
    ]
    assert [r.outcome for r in replays] == ["accepted", "msisdn: Unknown line 31611110002."]
    assert UsageEvent.objects.get(pk=fixed.pk).status == UsageEvent.Status.CHARGED
    bucket.refresh_from_db()
    assert bucket.remaining == 4 * MB
    assert client.get(f"{CHANGELIST}{fixed.pk}/change/").status_code == 200


def test_a_replay_without_a_reason_is_asked_again_and_replays_nothing(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    event = rejected("31611110003", "late-3")
    LineFactory(msisdn="31611110003")

    response = client.post(
        CHANGELIST, {"action": "replay", "_selected_action": [event.pk], "reason": "", "confirm": "1"}
    )

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert UsageEvent.objects.get(pk=event.pk).status == UsageEvent.Status.REJECTED
    assert not UsageEventReplay.objects.exists()
