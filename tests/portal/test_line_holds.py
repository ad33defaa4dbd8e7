"""Holds on a line: the rules of placing and lifting them, and the charging engine honouring
them on every path (online in the database and in the quota store, offline records)."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from charging.events import event_charge
from charging.ledger import ledger_mismatches
from charging.models import Bucket, ChargingRequest, ChargingSession, UsageEvent
from charging.offline import usage_batch_ingest
from charging.online import session_start, session_terminate, session_update
from charging.quota.profiles import Mode, line_profile, profiles_warm
from charging.requests import ChargingError
from charging.services import bucket_grant
from charging.units import Unit
from charging.usage_events import usage_event_ingest
from portal.models import AuditEntry, LineHold
from portal.services import HoldError, line_hold_lift, line_hold_place
from tests.charging.quota import quota_store, settle_store  # noqa: F401 - the fixture
from tests.concurrency import run_together
from tests.factories import MB, LineFactory, UserFactory, data_bucket
from tests.services import require_postgres

pytestmark = pytest.mark.django_db

Cause = LineHold.Cause


def standing(line) -> list[str]:
    return sorted(LineHold.objects.standing().filter(line=line).values_list("cause", flat=True))


def audit_rows(line) -> list[tuple]:
    return list(
        AuditEntry.objects.filter(target_id=str(line.pk))
        .order_by("pk")
        .values_list("actor", "action", "before", "after", "reason")
    )


def test_a_hold_stops_the_line_until_its_own_cause_lifts_it():
    agent = UserFactory(is_staff=True)
    line = LineFactory()

    hold = line_hold_place(line=line, cause=Cause.AGENT_BAR, reason="Fraud check", actor=agent)
    assert (line.is_active, line.standing_hold_causes()) == (False, ["agent_bar"])
    assert (hold.placed_by, hold.reason, hold.is_standing) == (agent, "Fraud check", True)

    lifted = line_hold_lift(line=line, cause=Cause.AGENT_BAR, reason="Checked: the customer's own calls", actor=agent)
    assert (line.is_active, line.standing_hold_causes()) == (True, [])
    assert (lifted.pk, lifted.lifted_by, lifted.lifted_reason) == (hold.pk, agent, "Checked: the customer's own calls")
    assert audit_rows(line) == [
        (agent.pk, "line_hold.place", {"holds": []}, {"holds": ["agent_bar"]}, "Fraud check"),
        (agent.pk, "line_hold.lift", {"holds": ["agent_bar"]}, {"holds": []}, "Checked: the customer's own calls"),
    ]


def test_a_customer_resuming_after_a_lost_sim_leaves_the_non_payment_hold_standing():
    customer = UserFactory()
    line = LineFactory(billing_account__customer__user=customer)
    line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Phone lost on the train", actor=customer)
    line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Invoice 2026-02 unpaid", actor=None)

    line_hold_lift(line=line, cause=Cause.LOST_OR_STOLEN, reason="Found it", actor=customer)

    assert standing(line) == ["non_payment"]
    assert not line.is_active
    assert audit_rows(line)[-1] == (
        customer.pk,
        "line_hold.lift",
        {"holds": ["lost_or_stolen", "non_payment"]},
        {"holds": ["non_payment"]},
        "Found it",
    )


def test_lifting_a_cause_that_does_not_stand_is_refused_and_changes_nothing():
    agent = UserFactory(is_staff=True)
    line = LineFactory()
    line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)
    audited = audit_rows(line)

    with pytest.raises(HoldError, match=f"line {line.msisdn} has no lost or stolen hold to lift"):
        line_hold_lift(line=line, cause=Cause.LOST_OR_STOLEN, reason="Found it", actor=agent)

    assert standing(line) == ["non_payment"]
    assert LineHold.objects.filter(lifted_at__isnull=False).count() == 0
    assert audit_rows(line) == audited


def test_a_terminated_line_can_never_be_lifted():
    agent = UserFactory(is_staff=True)
    line = LineFactory()
    line_hold_place(line=line, cause=Cause.TERMINATED, reason="Contract ended", actor=None)
    audited = audit_rows(line)

    with pytest.raises(HoldError, match="a terminated line stays terminated"):
        line_hold_lift(line=line, cause=Cause.TERMINATED, reason="Customer came back", actor=agent)

    assert standing(line) == ["terminated"]
    assert (line.is_active, line.holds_display()) == (False, "Terminated")
    assert audit_rows(line) == audited


@pytest.mark.parametrize(
    ("cause", "reason", "message"),
    [
        ("agent_bar", "", "a hold needs a reason"),
        ("agent_bar", "   ", "a hold needs a reason"),
        ("holiday", "Away", "unknown cause 'holiday'"),
        ("non_payment", "Unpaid again", "is held for non-payment already"),
        ("agent_bar", "x" * 201, "a hold's reason has at most 200 characters"),
    ],
    ids=["no reason", "blank reason", "unknown cause", "twice", "reason too long"],
)
def test_a_hold_without_a_reason_of_an_unknown_cause_or_twice_is_refused_and_changes_nothing(cause, reason, message):
    line = LineFactory()
    first = line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)
    audited = audit_rows(line)

    with pytest.raises(HoldError, match=message):
        line_hold_place(line=line, cause=cause, reason=reason, actor=None)

    assert list(LineHold.objects.values_list("pk", flat=True)) == [first.pk]
    assert audit_rows(line) == audited


def test_a_lift_without_a_reason_is_refused_and_changes_nothing():
    line = LineFactory()
    line_hold_place(line=line, cause=Cause.AGENT_BAR, reason="Fraud check", actor=None)

    with pytest.raises(HoldError, match="a hold needs a reason"):
        line_hold_lift(line=line, cause=Cause.AGENT_BAR, reason=" ", actor=None)

    assert standing(line) == ["agent_bar"]
    assert len(audit_rows(line)) == 1


def test_a_hold_lifted_may_be_placed_again_and_the_line_keeps_its_history():
    line = LineFactory()
    line_hold_place(line=line, cause=Cause.COMPANY_BAR, reason="Left the company", actor=None)
    line_hold_lift(line=line, cause=Cause.COMPANY_BAR, reason="Came back", actor=None)

    line_hold_place(line=line, cause=Cause.COMPANY_BAR, reason="Left again", actor=None)

    assert list(line.holds.order_by("pk").values_list("reason", "lifted_reason")) == [
        ("Left the company", "Came back"),
        ("Left again", ""),
    ]
    assert standing(line) == ["company_bar"]


def test_placing_and_lifting_a_hold_move_the_quota_stores_profiles_after_commit(
    settings, django_capture_on_commit_callbacks
):
    settings.CHARGING_QUOTA_STORE, settings.REDIS_URL = True, "redis://quota-store.invalid:6379/0"
    line = LineFactory()

    with django_capture_on_commit_callbacks() as placed:
        line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Stolen", actor=None)
    with django_capture_on_commit_callbacks() as lifted:
        line_hold_lift(line=line, cause=Cause.LOST_OR_STOLEN, reason="Recovered", actor=None)

    assert (len(placed), len(lifted)) == (1, 1)  # the epoch moves only once the hold is committed


def test_a_line_read_with_its_holds_answers_without_another_query(django_assert_num_queries):
    held, free = LineFactory(), LineFactory()
    line_hold_place(line=held, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)
    line_hold_place(line=held, cause=Cause.LOST_OR_STOLEN, reason="Lost", actor=None)

    with django_assert_num_queries(2):
        lines = list(type(held).objects.filter(pk__in=[held.pk, free.pk]).with_standing_holds().order_by("pk"))
        states = [line.holds_display() for line in lines]
    with django_assert_num_queries(1):
        unheld = type(held).objects.with_held().get(pk=free.pk)
        assert unheld.standing_hold_causes() == []

    assert states == ["On hold: lost or stolen, non-payment", "Active"]
    assert list(type(held).objects.active().filter(pk__in=[held.pk, free.pk])) == [free]


def test_the_non_payment_allowance_lets_only_its_services_through_and_only_that_cause(settings):
    settings.ACCOUNTS_NON_PAYMENT_ALLOWED_SERVICES = frozenset({"voice"})

    assert LineHold.causes_barring(["non_payment"], service="voice") == []
    assert LineHold.causes_barring(["non_payment"], service="data") == ["non_payment"]
    assert LineHold.causes_barring(["lost_or_stolen", "non_payment"], service="voice") == ["lost_or_stolen"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_holds_placed_and_lifted_at_once_on_one_line_leave_one_per_cause_and_an_exact_trail():
    require_postgres()
    line = LineFactory()
    line_hold_place(line=line, cause=Cause.AGENT_BAR, reason="Fraud check", actor=None)
    calls = [lambda: line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)] * 4
    calls += [lambda: line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Lost", actor=None)] * 4
    calls += [lambda: line_hold_lift(line=line, cause=Cause.AGENT_BAR, reason="Checked", actor=None)] * 4

    results = run_together(calls)

    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 9
    assert all(isinstance(r, HoldError) for r in refused), refused
    assert standing(line) == ["lost_or_stolen", "non_payment"]
    trail = [(before["holds"], after["holds"]) for _, _, before, after, _ in audit_rows(line)]
    assert len(trail) == 4
    for (_, earlier_after), (later_before, _) in zip(trail, trail[1:], strict=False):
        assert later_before == earlier_after  # each change starts from the one before it


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_each_status_into_its_hold():
    executor = MigrationExecutor(connection)
    before, holds = [("portal", "0003_audit_entries")], [("portal", "0004_line_holds")]
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    customer = old.get_model("portal", "Customer").objects.create(name="Old customer")
    account = old.get_model("portal", "BillingAccount").objects.create(customer=customer, number="BA-OLD")
    old_lines = old.get_model("portal", "Line").objects
    lines = {
        status: old_lines.create(billing_account=account, msisdn=f"3169{n}", status=status)
        for n, status in enumerate(["active", "suspended", "terminated"])
    }
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(holds)
        new = executor.loader.project_state(holds).apps
        migrated = new.get_model("portal", "LineHold").objects.filter(lifted_at__isnull=True)
        assert sorted(migrated.values_list("line_id", "cause", "placed_by")) == [
            (lines["suspended"].pk, "agent_bar", None),
            (lines["terminated"].pk, "terminated", None),
        ]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


# --- The call-centre workspace -------------------------------------------------------------------

CHANGELIST = "/admin/portal/line/"


@pytest.fixture
def agent_client(client):
    agent = UserFactory(username="agent-ann", is_staff=True, is_superuser=True)
    client.force_login(agent)
    return client, agent


def hold_action(client, action, lines, cause, reason):
    selected = [line.pk for line in lines]
    data = {"action": action, "_selected_action": selected, "cause": cause, "reason": reason, "confirm": "1"}
    return client.post(CHANGELIST, data, follow=True)


def test_an_agent_places_and_lifts_holds_from_the_line_list_and_is_recorded(agent_client):
    client, agent = agent_client
    line, other = LineFactory(), LineFactory()

    placed = hold_action(client, "place_hold", [line, other], "lost_or_stolen", "Customer called: phone stolen")
    lifted = hold_action(client, "lift_hold", [other], "lost_or_stolen", "Wrong line")

    assert "Place a hold: done on 2 line(s)." in placed.content.decode()
    assert "Lift a hold: done on 1 line(s)." in lifted.content.decode()
    assert (standing(line), standing(other)) == (["lost_or_stolen"], [])
    assert list(LineHold.objects.filter(line=line).values_list("placed_by", "reason")) == [
        (agent.pk, "Customer called: phone stolen")
    ]
    assert audit_rows(other) == [
        (agent.pk, "line_hold.place", {"holds": []}, {"holds": ["lost_or_stolen"]}, "Customer called: phone stolen"),
        (agent.pk, "line_hold.lift", {"holds": ["lost_or_stolen"]}, {"holds": []}, "Wrong line"),
    ]


def test_an_agent_lifting_a_cause_that_does_not_stand_is_told_and_nothing_changes(agent_client):
    client, _ = agent_client
    line = LineFactory(msisdn="31600000020")
    line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)
    audited = audit_rows(line)

    response = hold_action(client, "lift_hold", [line], "lost_or_stolen", "Found the phone")

    assert "Not done: line 31600000020 has no lost or stolen hold to lift." in response.content.decode()
    assert standing(line) == ["non_payment"]
    assert audit_rows(line) == audited


@pytest.mark.parametrize(
    ("action", "cause", "reason"),
    [("place_hold", "agent_bar", ""), ("lift_hold", "terminated", "Came back"), ("place_hold", "holiday", "Away")],
    ids=["no reason", "terminated is not liftable", "unknown cause"],
)
def test_a_hold_action_without_a_reason_or_a_valid_cause_is_asked_again_and_changes_nothing(
    agent_client, action, cause, reason
):
    client, _ = agent_client
    line = LineFactory()
    line_hold_place(line=line, cause=Cause.TERMINATED, reason="Contract ended", actor=None)

    response = hold_action(client, action, [line], cause, reason)

    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert standing(line) == ["terminated"]
    assert len(audit_rows(line)) == 1


def test_the_line_page_shows_its_holds_read_only_and_the_list_filters_by_standing_hold(agent_client):
    client, _ = agent_client
    held = LineFactory(msisdn="31600000021")
    LineFactory(msisdn="31600000022")
    line_hold_place(line=held, cause=Cause.COMPANY_BAR, reason="Left the company", actor=None)

    page = client.get(f"{CHANGELIST}{held.pk}/change/").content.decode()
    barred = client.get(CHANGELIST, {"hold": "company_bar"}).content.decode()
    unheld = client.get(CHANGELIST, {"hold": "none"}).content.decode()

    assert "Left the company" in page
    assert 'name="holds-0-reason"' not in page  # shown, not editable
    assert ("31600000021" in barred, "31600000022" in barred) == (True, False)
    assert ("31600000021" in unheld, "31600000022" in unheld) == (False, True)
    assert "On hold: company bar" in barred


# --- The charging engine --------------------------------------------------------------------------


def start(line, session_id="s-1", units=10 * MB, service="data"):
    return session_start(session_id=session_id, msisdn=line.msisdn, service=service, requested_units=units)


def record(line, external_id="cdr-1", quantity=2 * MB, service="data"):
    return {"external_id": external_id, "msisdn": line.msisdn, "service": service, "quantity": quantity}


def counters(bucket: Bucket) -> tuple[int, int]:
    bucket.refresh_from_db()
    return bucket.remaining, bucket.reserved


def test_a_held_line_is_refused_online_with_its_causes_and_nothing_is_reserved():
    line = LineFactory(msisdn="31600000009")
    bucket = data_bucket(line, 100 * MB)
    line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Stolen", actor=None)
    line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)

    with pytest.raises(ChargingError) as session:
        start(line)
    with pytest.raises(ChargingError) as event:
        event_charge(event_id="ev-1", msisdn=line.msisdn, service="data", units=1 * MB)

    for refused in (session.value, event.value):
        assert (refused.code, refused.field, refused.message) == (
            "line_inactive",
            "msisdn",
            "Line 31600000009 is held: lost or stolen, non-payment.",
        )
    assert counters(bucket) == (100 * MB, 0)
    assert not ChargingSession.objects.exists()
    assert not ChargingRequest.objects.exists()


def test_a_held_lines_records_are_stored_rejected_with_the_reason_alone_or_in_a_batch(
    django_capture_on_commit_callbacks,
):
    line, other = LineFactory(msisdn="31600000010"), LineFactory(msisdn="31600000011")
    bucket, others = data_bucket(line, 100 * MB), data_bucket(other, 100 * MB)
    line_hold_place(line=line, cause=Cause.COMPANY_BAR, reason="Left the company", actor=None)

    with django_capture_on_commit_callbacks(execute=True):
        alone, _ = usage_event_ingest(payload=record(line, "cdr-alone"))
        result = usage_batch_ingest(payloads=[record(line, "cdr-1"), record(other, "cdr-2")], source="mediation")

    reason = "msisdn: Line 31600000010 is held: company bar."
    assert (alone.status, alone.reason) == ("rejected", reason)
    assert [(o.external_id, o.status) for o in result.outcomes] == [("cdr-1", "rejected"), ("cdr-2", "accepted")]
    assert UsageEvent.objects.get(external_id="cdr-1").reason == reason
    assert (counters(bucket), counters(others)) == ((100 * MB, 0), (98 * MB, 0))
    assert ledger_mismatches() == []


def test_a_hold_placed_during_a_session_grants_nothing_more_but_what_was_used_is_charged():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    assert start(line)["granted_units"] == 10 * MB

    line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Stolen", actor=None)
    updated = session_update(session_id="s-1", request_number=1, used_units=4 * MB, requested_units=10 * MB)
    ended = session_terminate(session_id="s-1", request_number=2, used_units=0)

    assert (updated["used_units"], updated["granted_units"], updated["final_unit_action"]) == (4 * MB, 0, "terminate")
    assert (ended["status"], ended["granted_units"]) == ("terminated", 0)
    assert counters(bucket) == (96 * MB, 0)
    assert ledger_mismatches() == []


def test_a_non_payment_hold_lets_only_the_allowed_services_through(settings, django_capture_on_commit_callbacks):
    settings.ACCOUNTS_NON_PAYMENT_ALLOWED_SERVICES = frozenset({"sms"})
    line = LineFactory(msisdn="31600000012")
    data = data_bucket(line, 100 * MB)
    texts = bucket_grant(line=line, name="SMS", unit=Unit.MESSAGES, quantity=10)
    line_hold_place(line=line, cause=Cause.NON_PAYMENT, reason="Unpaid", actor=None)

    sent = event_charge(event_id="sms-1", msisdn=line.msisdn, service="sms")
    with pytest.raises(ChargingError, match="Line 31600000012 is held: non-payment."):
        start(line)
    with django_capture_on_commit_callbacks(execute=True):
        result = usage_batch_ingest(
            payloads=[record(line, "cdr-sms", 1, service="sms"), record(line, "cdr-data")], source="mediation"
        )

    assert sent["units_from_allowances"] == 1
    assert [o.status for o in result.outcomes] == ["accepted", "rejected"]
    assert (counters(texts), counters(data)) == ((8, 0), (100 * MB, 0))

    line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Lost", actor=None)
    with pytest.raises(ChargingError, match="is held: lost or stolen."):
        event_charge(event_id="sms-2", msisdn=line.msisdn, service="sms")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quota_store")
def test_a_hold_placed_after_the_store_cached_a_profile_refuses_the_next_start_there():
    line = LineFactory(msisdn="31600000013")
    bucket = data_bucket(line, 100 * MB)
    assert start(line, session_id="before")["granted_units"] == 10 * MB  # the store keeps the profile
    session_terminate(session_id="before", request_number=1, used_units=1 * MB)

    line_hold_place(line=line, cause=Cause.LOST_OR_STOLEN, reason="Stolen", actor=None)
    with pytest.raises(ChargingError) as refused:
        start(line, session_id="after")
    assert (refused.value.code, refused.value.message) == ("line_inactive", "Line 31600000013 is held: lost or stolen.")
    assert line_profile(msisdn=line.msisdn, service="data", at=timezone.now()).mode == Mode.INACTIVE

    line_hold_lift(line=line, cause=Cause.LOST_OR_STOLEN, reason="Recovered", actor=None)
    assert start(line, session_id="again")["granted_units"] == 10 * MB
    session_terminate(session_id="again", request_number=1, used_units=2 * MB)
    settle_store()
    assert list(ChargingSession.objects.order_by("session_id").values_list("session_id", "used_units")) == [
        ("again", 2 * MB),
        ("before", 1 * MB),
    ]
    assert counters(bucket) == (97 * MB, 0)
    assert ledger_mismatches() == []


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quota_store")
def test_a_hold_placed_during_a_session_in_the_store_grants_nothing_more():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    assert start(line)["granted_units"] == 10 * MB

    line_hold_place(line=line, cause=Cause.AGENT_BAR, reason="Fraud check", actor=None)
    updated = session_update(session_id="s-1", request_number=1, used_units=4 * MB, requested_units=10 * MB)
    session_terminate(session_id="s-1", request_number=2, used_units=0)

    assert (updated["used_units"], updated["granted_units"], updated["final_unit_action"]) == (4 * MB, 0, "terminate")
    settle_store()
    assert counters(bucket) == (96 * MB, 0)
    assert ledger_mismatches() == []


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quota_store")
def test_warming_the_store_leaves_held_lines_out():
    held, free = LineFactory(), LineFactory()
    data_bucket(held, 100 * MB)
    data_bucket(free, 100 * MB)
    line_hold_place(line=held, cause=Cause.TERMINATED, reason="Contract ended", actor=None)

    assert profiles_warm(lines=[held, free], service="data") == 1
