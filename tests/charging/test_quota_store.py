"""Online sessions through the quota store (Redis): the same answers as the database path,
the same balances and ledger once its log is applied, and the database path still right
beside it."""

import multiprocessing
import os
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from charging.events import event_charge, event_refund
from charging.ledger import ledger_mismatches
from charging.models import (
    Bucket,
    ChargingSession,
    LedgerEntry,
    MoneyBalance,
    NodeLimit,
    QuotaLogSetAside,
    Tariff,
    UsageEvent,
)
from charging.online import session_start, session_terminate, session_update
from charging.online import store as store_sessions
from charging.online.store import sessions_expire
from charging.quota import store
from charging.quota.log import FOLLOWER_NICENESS, LogNotDurable, log_apply, log_follow, log_pending
from charging.quota.profiles import line_profile
from charging.quota.slices import slices_in_store, slices_mismatches
from charging.requests import ChargingError
from charging.services import bucket_grant, money_post
from charging.tasks import expire_reservations
from charging.units import Service, Unit
from charging.usage_events import usage_event_ingest
from enterprise.models import SteeringRule
from portal.services import billing_account_open
from tests.charging.quota import quota_store, settle_store  # noqa: F401 - the fixture
from tests.charging.trees import MB, company_tree, limit_on
from tests.concurrency import run_together
from tests.factories import CustomerFactory, LineFactory, data_bucket, default_data_tariff
from tests.services import require_postgres

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("quota_store")]


def start(line, session_id="s-1", units=10 * MB):
    return session_start(session_id=session_id, msisdn=line.msisdn, service="data", requested_units=units)


def fresh(row):
    row.refresh_from_db()
    return row


def test_a_session_settles_in_the_store_and_reaches_the_ledger_when_the_log_is_applied():
    tree = company_tree(lines=1, pool_units=100 * MB)
    limit = limit_on(tree.team, 50 * MB)
    line = tree.lines[0]

    assert start(line)["granted_units"] == 10 * MB
    updated = session_update(session_id="s-1", request_number=1, used_units=4 * MB, requested_units=10 * MB)
    ended = session_terminate(session_id="s-1", request_number=2, used_units=6 * MB)

    assert (updated["used_units"], updated["units_from_allowances"], updated["granted_units"]) == (
        4 * MB,
        4 * MB,
        10 * MB,
    )
    assert (ended["status"], ended["used_units"], ended["granted_units"]) == ("terminated", 6 * MB, 0)
    pool = fresh(tree.pool)
    assert pool.remaining == 100 * MB  # nothing applied yet: what the store took is reserved
    assert pool.reserved == pool.in_store >= 10 * MB
    assert not ChargingSession.objects.exists()

    settle_store()
    assert (fresh(tree.pool).remaining, fresh(tree.pool).reserved) == (90 * MB, 0)
    assert (fresh(limit).used, fresh(limit).reserved) == (10 * MB, 0)
    session = ChargingSession.objects.get(session_id="s-1")
    assert (session.status, session.used_units, session.request_number) == ("terminated", 10 * MB, 2)
    usage = LedgerEntry.objects.filter(bucket=tree.pool, kind=LedgerEntry.Kind.USAGE)
    assert sorted(usage.values_list("units", flat=True)) == [-6 * MB, -4 * MB]
    assert ledger_mismatches() == []


def test_a_start_reads_the_profile_the_store_holds_in_its_own_step(monkeypatch):
    tree = company_tree(lines=1, pool_units=100 * MB)
    limit = limit_on(tree.team, 50 * MB)
    line = tree.lines[0]
    read_apart = []
    monkeypatch.setattr(
        store_sessions, "line_profile", lambda **kwargs: read_apart.append(kwargs) or line_profile(**kwargs)
    )

    for session_id in ("first", "second"):
        assert start(line, session_id=session_id)["granted_units"] == 10 * MB
        session_terminate(session_id=session_id, request_number=1, used_units=3 * MB)

    assert len(read_apart) == 1  # the first start built the profile; the second found it in its step
    settle_store()
    sessions_found = ChargingSession.objects.order_by("session_id").values_list(
        "session_id", "line_id", "status", "used_units"
    )
    assert list(sessions_found) == [("first", line.pk, "terminated", 3 * MB), ("second", line.pk, "terminated", 3 * MB)]
    assert (fresh(limit).used, fresh(tree.pool).remaining) == (6 * MB, 94 * MB)
    assert ledger_mismatches() == []


def test_a_start_after_the_lines_limits_changed_is_granted_by_the_new_profile():
    tree = company_tree(lines=1, pool_units=100 * MB)
    line = tree.lines[0]
    assert start(line, session_id="before")["granted_units"] == 10 * MB  # the store keeps the profile
    session_terminate(session_id="before", request_number=1, used_units=1 * MB)

    limit_on(tree.division, 5 * MB)  # a new limit: the kept profile is of an earlier epoch

    answer = start(line, session_id="after")
    assert (answer["granted_units"], answer["final_unit_action"]) == (5 * MB, "terminate")


def test_a_limit_an_agent_adds_in_the_admin_binds_the_next_start(client, django_user_model):
    tree = company_tree(lines=1, pool_units=100 * MB)
    line = tree.lines[0]
    assert start(line, session_id="before")["granted_units"] == 10 * MB  # the store keeps the profile
    session_terminate(session_id="before", request_number=1, used_units=1 * MB)
    client.force_login(django_user_model.objects.create_superuser("agent-lead", password="x"))

    added = client.post(
        "/admin/charging/nodelimit/add/",
        {"node": tree.division.pk, "unit": "bytes", "period": "month", "limit": 5 * MB, "on_exceed": "block"},
    )

    assert added.status_code == 302
    answer = start(line, session_id="after")
    assert (answer["granted_units"], answer["final_unit_action"]) == (5 * MB, "terminate")


def test_repeats_get_the_first_answer_and_bad_requests_the_database_paths_refusals():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    first = start(line, units=30 * MB)

    assert start(line, units=5 * MB) == first  # the same request id: the first answer, nothing moved
    with pytest.raises(ChargingError) as skipped:
        session_update(session_id="s-1", request_number=2, used_units=5 * MB)
    with pytest.raises(ChargingError) as overrun:
        session_update(session_id="s-1", request_number=1, used_units=31 * MB)
    ended = session_terminate(session_id="s-1", request_number=1, used_units=5 * MB)
    assert session_terminate(session_id="s-1", request_number=1, used_units=9 * MB) == ended
    with pytest.raises(ChargingError) as closed:
        session_update(session_id="s-1", request_number=2, used_units=0)
    with pytest.raises(ChargingError) as unknown:
        session_update(session_id="nobody", request_number=1, used_units=0)

    assert (skipped.value.code, skipped.value.status) == ("out_of_order", 409)
    assert (overrun.value.code, overrun.value.field) == ("used_exceeds_grant", "used_units")
    assert (closed.value.code, closed.value.status) == ("session_closed", 409)
    assert (unknown.value.code, unknown.value.status) == ("unknown_session", 404)
    settle_store()
    assert (fresh(bucket).remaining, fresh(bucket).reserved) == (95 * MB, 0)
    assert ledger_mismatches() == []


def test_the_last_grant_a_limit_allows_says_terminate_and_nothing_more_is_granted():
    tree = company_tree(lines=2, pool_units=100 * MB)
    limit = limit_on(tree.team, 15 * MB)
    first, second = tree.lines

    assert start(first, "a")["granted_units"] == 10 * MB
    last = start(second, "b")
    assert (last["granted_units"], last["final_unit_action"]) == (5 * MB, "terminate")
    again = session_update(session_id="b", request_number=1, used_units=5 * MB, requested_units=MB)
    assert (again["granted_units"], again["final_unit_action"]) == (0, "terminate")
    session_terminate(session_id="a", request_number=1, used_units=10 * MB)
    session_terminate(session_id="b", request_number=2, used_units=0)

    settle_store()
    assert (fresh(limit).used, fresh(limit).reserved) == (15 * MB, 0)
    assert fresh(tree.pool).remaining == 85 * MB
    assert ledger_mismatches() == []


def test_when_the_allowances_run_out_the_session_goes_on_in_money_in_the_database():
    line = LineFactory()
    default_data_tariff()  # 0.01 per MB
    money_post(billing_account=line.billing_account, amount=Decimal("1.00"), kind="topup", reason="Top-up")
    bucket = data_bucket(line, 10 * MB)

    assert start(line, units=8 * MB)["granted_units"] == 8 * MB
    handed = session_update(session_id="s-1", request_number=1, used_units=8 * MB, requested_units=8 * MB)
    assert (handed["granted_units"], handed["used_units"], handed["units_from_allowances"]) == (8 * MB, 8 * MB, 8 * MB)
    session = ChargingSession.objects.get(session_id="s-1")  # the database holds it now
    assert (session.request_number, session.used_units) == (1, 8 * MB)
    ended = session_terminate(session_id="s-1", request_number=2, used_units=8 * MB)

    # the 2 MB left in the bundle, then 6 MB in money
    assert (ended["units_from_allowances"], Decimal(ended["amount"])) == (2 * MB, Decimal("0.06"))
    settle_store()
    assert (fresh(bucket).remaining, fresh(bucket).reserved) == (0, 0)
    assert MoneyBalance.objects.get(billing_account=line.billing_account).amount == Decimal("0.94")
    assert ledger_mismatches() == []


def test_a_session_that_vanishes_is_expired_and_its_late_report_still_charged():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    start(line, units=10 * MB)
    counter = store.counter_key(store.BUCKET, bucket.pk)
    free_before = slices_in_store([counter])[counter]

    assert sessions_expire(now=timezone.now() + timedelta(seconds=301)) == 1
    assert slices_in_store([counter])[counter] == free_before + 10 * MB  # the grant went back
    log_apply()
    assert ChargingSession.objects.get(session_id="s-1").status == "expired"
    late = session_update(session_id="s-1", request_number=1, used_units=4 * MB)

    assert late["used_units"] == 4 * MB
    settle_store()
    assert (fresh(bucket).remaining, fresh(bucket).reserved) == (96 * MB, 0)
    assert ledger_mismatches() == []


def test_a_line_with_no_allowance_is_charged_in_the_database_until_it_gets_one():
    line = LineFactory()
    default_data_tariff()
    money_post(billing_account=line.billing_account, amount=Decimal("1.00"), kind="topup", reason="Top-up")

    start(line, "money")
    assert ChargingSession.objects.filter(session_id="money").exists()  # charged in the database at once
    data_bucket(line, 100 * MB)  # a new bundle: the line's profile is read afresh
    start(line, "bundle")
    assert not ChargingSession.objects.filter(session_id="bundle").exists()  # in the store
    session_terminate(session_id="bundle", request_number=1, used_units=MB)

    settle_store()
    assert ChargingSession.objects.get(session_id="bundle").used_units == MB
    assert ledger_mismatches() == []


def test_offline_usage_calls_back_what_the_store_holds_rather_than_charge_money(settings):
    settings.CHARGING_QUOTA_SHARE = 1.0  # a slice takes all there is
    line = LineFactory()
    default_data_tariff()
    money_post(billing_account=line.billing_account, amount=Decimal("1.00"), kind="topup", reason="Top-up")
    bucket = data_bucket(line, 10 * MB)
    start(line, units=2 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=2 * MB)  # not applied yet
    assert fresh(bucket).reserved == 10 * MB  # the store holds the whole bundle in its slice

    event, _ = usage_event_ingest(
        payload={"external_id": "cdr-1", "msisdn": line.msisdn, "service": "data", "quantity": 9 * MB}
    )

    event = UsageEvent.objects.get(pk=event.pk)
    assert (event.status, event.units_from_buckets) == ("charged", 8 * MB)
    settle_store()
    assert (fresh(bucket).remaining, fresh(bucket).reserved) == (0, 0)
    assert ledger_mismatches() == []


def test_units_granted_never_pass_a_limit_even_when_slices_are_short():
    tree = company_tree(lines=3, pool_units=20 * MB)
    limit = limit_on(tree.division, 12 * MB)
    granted = [start(line, f"s{n}", units=5 * MB)["granted_units"] for n, line in enumerate(tree.lines)]

    assert granted == [5 * MB, 5 * MB, 2 * MB]
    assert sum(granted) <= fresh(limit).limit
    for n, units in enumerate(granted):
        session_terminate(session_id=f"s{n}", request_number=1, used_units=units)
    settle_store()
    assert (fresh(limit).used, fresh(limit).reserved) == (12 * MB, 0)
    assert Bucket.objects.get(pk=tree.pool.pk).remaining == 8 * MB
    assert NodeLimit.objects.filter(used__gt=0).count() == 1
    assert ledger_mismatches() == []


def test_an_update_past_the_services_bound_is_refused_in_the_store_too():
    line = LineFactory()
    data_bucket(line, 100 * MB)
    start(line)

    with pytest.raises(ChargingError) as refused:
        session_update(session_id="s-1", request_number=1, used_units=0, requested_units=100 * 1024**3 + 1)

    assert (refused.value.code, refused.value.field) == ("invalid", "requested_units")
    assert session_update(session_id="s-1", request_number=1, used_units=MB)["request_number"] == 1
    settle_store()


def test_the_rest_endpoints_answer_the_same_through_the_store(usage_poster):
    line = LineFactory()
    data_bucket(line, 100 * MB)
    body = {"session_id": "s-1", "msisdn": line.msisdn, "service": "data", "requested_units": 30 * MB}

    started = usage_poster.post("/api/chargingSession/", body, format="json")
    repeated = usage_poster.post("/api/chargingSession/", body, format="json")
    skipped = usage_poster.post(
        "/api/chargingSession/s-1/update/", {"request_number": 3, "used_units": MB}, format="json"
    )
    ended = usage_poster.post(
        "/api/chargingSession/s-1/terminate/", {"request_number": 1, "used_units": 20 * MB}, format="json"
    )

    assert started.status_code == 201
    assert (started.json()["granted_units"], started.json()["validity_seconds"]) == (30 * MB, 300)
    assert (repeated.status_code, repeated.json()) == (201, started.json())
    assert (skipped.status_code, skipped.json()["code"], skipped.json()["field"]) == (
        409,
        "out_of_order",
        "request_number",
    )
    assert (ended.status_code, ended.json()["status"], ended.json()["used_units"]) == (200, "terminated", 20 * MB)


def test_operators_load_a_company_apply_the_log_and_hand_slices_back_by_command():
    tree = company_tree(lines=2, pool_units=100 * MB)
    limit = limit_on(tree.root, 80 * MB)

    call_command("quota_store", "warm", company=tree.company.pk, stdout=StringIO())
    assert fresh(tree.pool).in_store == 25 * MB  # a quarter of what is left
    assert fresh(limit).in_store == 20 * MB
    start(tree.lines[0], units=5 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=3 * MB)
    call_command("quota_store", "check", stdout=StringIO())
    call_command("quota_store", "apply", stdout=StringIO())
    call_command("quota_store", "return", stdout=StringIO())

    assert (fresh(tree.pool).remaining, fresh(tree.pool).reserved, fresh(tree.pool).in_store) == (97 * MB, 0, 0)
    assert (fresh(limit).used, fresh(limit).reserved, fresh(limit).in_store) == (3 * MB, 0, 0)
    assert ledger_mismatches() == []


def test_the_command_says_when_the_store_is_off(settings):
    settings.CHARGING_QUOTA_STORE = False
    with pytest.raises(CommandError, match="quota store is off"):
        call_command("quota_store", "apply")


def test_the_check_finds_a_slice_the_store_lost_and_repair_frees_it():
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    start(line, units=10 * MB)
    counter = store.counter_key(store.BUCKET, bucket.pk)
    store.client().decrby(counter, MB)  # units vanish from the store (a crash between two steps)

    with pytest.raises(CommandError, match="1 slices"):
        call_command("quota_store", "check", stdout=StringIO(), stderr=StringIO())
    reserved = fresh(bucket).reserved
    call_command("quota_store", "repair", stdout=StringIO())
    call_command("quota_store", "check", stdout=StringIO())  # accounted for again
    assert fresh(bucket).reserved == reserved - MB


def test_the_minutely_task_ends_lapsed_sessions_and_takes_back_slices_of_ended_allowances(settings):
    settings.CHARGING_GRANT_VALIDITY_SECONDS = 0  # every grant has lapsed by the time the task runs
    line = LineFactory()
    bucket = data_bucket(line, 100 * MB)
    start(line, units=10 * MB)
    Bucket.objects.filter(pk=bucket.pk).update(valid_until=timezone.now())

    assert expire_reservations() == 1  # as beat would run it

    assert (fresh(bucket).reserved, fresh(bucket).in_store) == (0, 0)
    settle_store()
    assert ChargingSession.objects.get(session_id="s-1").status == "expired"
    assert fresh(bucket).remaining == 100 * MB


def test_a_limit_that_sends_the_excess_to_the_personal_account_keeps_its_sessions_in_the_database():
    tree = company_tree(lines=1, pool_units=100 * MB)
    default_data_tariff()  # 0.01 per MB
    personal = billing_account_open(customer=CustomerFactory())
    money_post(billing_account=personal, amount=Decimal("10"), kind="topup", reason="Top-up")
    tree.devices[0].personal_account = personal
    tree.devices[0].save()
    limit_on(tree.team, 5 * MB, on_exceed=NodeLimit.OnExceed.PERSONAL)

    start(tree.lines[0], units=8 * MB)
    assert ChargingSession.objects.filter(session_id="s-1").exists()  # charged in the database
    session_terminate(session_id="s-1", request_number=1, used_units=8 * MB)

    settle_store()
    assert fresh(tree.pool).remaining == 95 * MB
    assert MoneyBalance.objects.get(billing_account=personal).amount == Decimal("9.9700")
    assert ledger_mismatches() == []


def test_with_byod_steering_the_database_decides_who_pays_roaming_and_home_alike():
    tree = company_tree(lines=1, pool_units=100 * MB)
    default_data_tariff()
    personal = billing_account_open(customer=CustomerFactory())
    money_post(billing_account=personal, amount=Decimal("1"), kind="topup", reason="Top-up")
    tree.devices[0].personal_account = personal
    tree.devices[0].save()
    SteeringRule.objects.create(
        company=tree.company, name="Roaming is personal", service="data", zone="roam_eu", payer="personal"
    )

    session_start(
        session_id="roam", msisdn=tree.lines[0].msisdn, service="data", requested_units=10 * MB, zone="roam_eu"
    )
    session_terminate(session_id="roam", request_number=1, used_units=10 * MB)
    start(tree.lines[0], "home", units=10 * MB)
    session_terminate(session_id="home", request_number=1, used_units=10 * MB)

    settle_store()
    assert ChargingSession.objects.filter(session_id__in=["roam", "home"]).count() == 2
    assert MoneyBalance.objects.get(billing_account=personal).amount == Decimal("0.9000")
    assert fresh(tree.pool).remaining == 90 * MB
    assert ledger_mismatches() == []


def sms_bundle(line, messages: int) -> Bucket:
    return bucket_grant(line=line, name="SMS", unit=Unit.MESSAGES, quantity=messages)


def test_an_sms_the_bundle_covers_is_charged_in_the_store_once_and_refunded_once():
    line = LineFactory()
    bundle = sms_bundle(line, 10)

    first = event_charge(event_id="sms-1", msisdn=line.msisdn, service="sms")
    again = event_charge(event_id="sms-1", msisdn=line.msisdn, service="sms")
    assert fresh(bundle).remaining == 10  # charged in the store: the database learns it from the log
    refund = event_refund(event_id="sms-1")

    assert first == again
    assert (first["units"], first["units_from_allowances"], first["amount"]) == (1, 1, "0")
    assert refund["units_returned"] == 1
    settle_store()
    assert (fresh(bundle).remaining, fresh(bundle).reserved) == (10, 0)
    assert ledger_mismatches() == []


def test_an_sms_past_the_bundle_or_a_limit_is_charged_or_refused_by_the_database():
    tree = company_tree(lines=1, pool_units=None)
    line = tree.lines[0]
    Tariff.objects.create(name="SMS", service=Service.SMS, price=Decimal("0.09"), per_units=1, is_default=True)
    money_post(billing_account=tree.account, amount=Decimal("1"), kind="topup", reason="Top-up")
    sms_bundle(line, 1)
    limit_on(tree.team, 2, unit=Unit.MESSAGES)

    from_bundle = event_charge(event_id="a", msisdn=line.msisdn, service="sms")
    in_money = event_charge(event_id="b", msisdn=line.msisdn, service="sms")
    with pytest.raises(ChargingError) as refused:
        event_charge(event_id="c", msisdn=line.msisdn, service="sms")

    assert (from_bundle["units_from_allowances"], from_bundle["amount"]) == (1, "0")
    assert (in_money["units_from_allowances"], Decimal(in_money["amount"])) == (0, Decimal("0.09"))
    assert (refused.value.code, refused.value.status) == ("limit_reached", 402)
    assert event_charge(event_id="b", msisdn=line.msisdn, service="sms") == in_money  # a repeat: no second charge
    settle_store()
    assert MoneyBalance.objects.get(billing_account=tree.account).amount == Decimal("0.91")
    assert ledger_mismatches() == []


def test_a_repeated_start_of_a_session_charged_in_the_database_gets_the_first_answer():
    line = LineFactory()  # no allowance: its sessions are charged in the database
    default_data_tariff()
    money_post(billing_account=line.billing_account, amount=Decimal("1.00"), kind="topup", reason="Top-up")

    first = start(line, "money")
    again = start(line, "money")  # the store knows the session is the database's

    assert again == first
    assert ChargingSession.objects.filter(session_id="money").count() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("covered", [True, False], ids=["in the store", "in the database"])
def test_twin_starts_sent_at_once_get_one_answer_and_open_one_session(covered):
    """Eight deliveries of the same start at the same moment: one session, one answer for all,
    charged once, whether the store or the database (no allowance: money) charges the line."""
    require_postgres()
    line = LineFactory()
    default_data_tariff()
    money_post(billing_account=line.billing_account, amount=Decimal("5.00"), kind="topup", reason="Top-up")
    if covered:
        data_bucket(line, 100 * MB)
    start(line, session_id="warm-up", units=MB)  # the store now holds the line's profile

    answers = run_together([lambda: start(line, session_id="twin", units=10 * MB) for _ in range(8)])

    assert not [answer for answer in answers if isinstance(answer, Exception)], answers
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["granted_units"] == 10 * MB
    session_terminate(session_id="twin", request_number=1, used_units=4 * MB)
    session_terminate(session_id="warm-up", request_number=1, used_units=0)
    settle_store()
    twin = ChargingSession.objects.get(session_id="twin")
    assert (twin.status, twin.used_units) == ("terminated", 4 * MB)
    assert ledger_mismatches() == []


def _follow(stop) -> None:
    log_follow(stop=stop, idle_seconds=0.01)
    connections.close_all()


def _until(condition, *, seconds: float = 20, follower=None) -> None:
    """Until ``condition()`` holds: the follower works on its own time."""
    deadline = time.monotonic() + seconds
    while not condition():
        exitcode = follower.exitcode if follower is not None else None
        assert time.monotonic() < deadline, f"the follower did not apply the log in time (exit code {exitcode})"
        time.sleep(0.01)


@contextmanager
def follower_running():
    """A follower in a process of its own, as ``quota_store follow`` runs; stopped on leaving."""
    connections.close_all()  # the follower opens its own
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    follower = context.Process(target=_follow, args=(stop,))
    follower.start()
    try:
        yield follower
    finally:
        stop.set()
        follower.join(timeout=20)


def sessions_applied_one_after_the_other(tree, follower, between=lambda: None) -> None:
    """A session on each of two lines, the second once the follower applied the first."""
    start(tree.lines[0], session_id="s-1")
    session_terminate(session_id="s-1", request_number=1, used_units=3 * MB)
    _until(lambda: ChargingSession.objects.filter(session_id="s-1").exists(), follower=follower)
    between()
    start(tree.lines[1], session_id="s-2")
    session_terminate(session_id="s-2", request_number=1, used_units=4 * MB)
    _until(lambda: ChargingSession.objects.filter(session_id="s-2").exists(), follower=follower)


def test_a_follower_applies_the_log_as_it_grows_at_a_lower_cpu_priority():
    tree = company_tree(lines=2, pool_units=100 * MB)
    with follower_running() as follower:
        sessions_applied_one_after_the_other(tree, follower)
        niceness = os.getpriority(os.PRIO_PROCESS, follower.pid)

    assert follower.exitcode == 0
    assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + FOLLOWER_NICENESS)
    assert fresh(tree.pool).remaining == 93 * MB  # both sessions' usage, applied by the follower
    assert ledger_mismatches() == []
    settle_store()
    assert fresh(tree.pool).reserved == 0


def _kill_other_database_sessions() -> None:
    """Ends every other session on the test database, as a PostgreSQL restart would."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone() is not None


def test_a_follower_whose_database_sessions_are_killed_reconnects_and_keeps_its_place():
    require_postgres()
    tree = company_tree(lines=2, pool_units=100 * MB)
    with follower_running() as follower:
        sessions_applied_one_after_the_other(tree, follower, between=_kill_other_database_sessions)

    assert follower.exitcode == 0
    assert fresh(tree.pool).remaining == 93 * MB  # each session's usage applied once
    assert ledger_mismatches() == []


def test_the_log_is_applied_only_as_far_as_redis_has_it_on_disk(monkeypatch):
    tree = company_tree(lines=1, pool_units=100 * MB)
    start(tree.lines[0], session_id="s-1")
    session_terminate(session_id="s-1", request_number=1, used_units=3 * MB)
    monkeypatch.setattr(store, "persistence", lambda: ("yes", "everysec"))  # a Redis that fsyncs every second

    assert log_apply() == 0  # written just now: not on disk yet, as far as anyone can tell
    assert fresh(tree.pool).remaining == 100 * MB
    seconds, micros = store.client().time()
    assert log_apply(durable_until_ms=seconds * 1000 + micros // 1000) == 1  # once it is
    assert fresh(tree.pool).remaining == 97 * MB


def test_a_redis_that_keeps_no_append_only_file_is_refused(settings, monkeypatch):
    settings.CHARGING_QUOTA_VOLATILE_REDIS = False
    monkeypatch.setattr(store, "persistence", lambda: ("no", "everysec"))

    with pytest.raises(LogNotDurable):
        log_apply()


def test_an_entry_the_database_cannot_apply_is_set_aside_and_the_log_goes_on():
    tree = company_tree(lines=2, pool_units=0)  # each line draws on its own allowance
    first, second = (data_bucket(line, 50 * MB) for line in tree.lines)
    start(tree.lines[0], session_id="s-1", units=10 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=4 * MB)
    # The database no longer agrees with the store about the first line's allowance (as after
    # Redis lost writes the database had applied): its slice is gone.
    Bucket.objects.filter(pk=first.pk).update(reserved=0, in_store=0)
    start(tree.lines[1], session_id="s-2", units=10 * MB)
    session_terminate(session_id="s-2", request_number=1, used_units=6 * MB)

    log_apply()

    (aside,) = QuotaLogSetAside.objects.all()
    assert "not_negative" in aside.error or "in_store" in aside.error
    assert fresh(second).remaining == 44 * MB  # the entries after it were applied
    assert ChargingSession.objects.filter(session_id="s-2", status="terminated").exists()
    assert log_pending() == []


def test_recover_after_redis_lost_writes_leaves_every_slice_accounted_for():
    tree = company_tree(lines=2, pool_units=0)
    first, _ = (data_bucket(line, 50 * MB) for line in tree.lines)
    start(tree.lines[0], session_id="s-1", units=10 * MB)
    session_terminate(session_id="s-1", request_number=1, used_units=4 * MB)
    Bucket.objects.filter(pk=first.pk).update(reserved=0, in_store=0)  # the two disagree, as after a crash
    out = StringIO()

    call_command("quota_store", "recover", stdout=out)

    assert out.getvalue().split()[:3] == ["quota-store", "recover", "applied=1"]
    assert "set_aside=1 mismatches=0" in out.getvalue()
    assert slices_mismatches() == []
    assert ledger_mismatches() == []
