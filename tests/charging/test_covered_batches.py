"""A batch is charged with the rows its lines share locked last, and only when its decisions
still stand on their current values; otherwise it is charged with every row locked first.
Either way the books are exactly what charging the batch with every row locked gives."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging import covered_batches, offline, usage_events
from charging.ledger import ledger_mismatches
from charging.models import Bucket, NodeLimit, Tariff, UsageEvent
from charging.offline import usage_batch_ingest
from charging.periods import period_start
from charging.services import bucket_grant
from charging.units import Service, Unit
from charging.usage_events import usage_events_charge
from tests.charging.test_offline_batch import books
from tests.charging.trees import MB, company_tree, limit_on
from tests.concurrency import run_together
from tests.factories import allowances_valid_from
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def charged_by_the_tests(monkeypatch):
    """Records are stored here, and charged by each test itself (not queued when stored)."""
    monkeypatch.setattr(offline, "_queue_charge", lambda event_ids: None)


def valid_since_yesterday() -> None:
    """Allowances granted a day ago, so that records of the last hour may draw on them."""
    allowances_valid_from(Bucket.objects.all(), timezone.now() - timedelta(days=1))


def records(tree, *, count: int, quantity: int = MB, prefix: str = "cdr", lines=None) -> list[int]:
    """Stores ``count`` records spread over ``lines`` (default: all the tree's), a minute apart."""
    lines = lines or tree.lines
    now = timezone.now()
    payloads = [
        {
            "external_id": f"{prefix}-{n}",
            "msisdn": lines[n % len(lines)].msisdn,
            "service": "data",
            "quantity": quantity,
            "occurred_at": (now - timedelta(minutes=count - n)).isoformat(),
        }
        for n in range(count)
    ]
    with transaction.atomic():
        result = usage_batch_ingest(payloads=payloads, source="test")
    return [outcome.event_id for outcome in result.outcomes]


def a_covered_company(*, lines: int = 3, pool_units: int = 100 * MB):
    """Lines under a pool with room for a batch of 18 MB: a line's own allowance, a blocking
    limit on a device and on the division, an overage limit on the team that is not reached."""
    tree = company_tree(lines=lines, pool_units=pool_units, credit=Decimal("100"))
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    bucket_grant(line=tree.lines[0], name="Own", unit=Unit.BYTES, quantity=3 * MB, priority=10)
    # Limits counting since the month began (one set up today moves its start back on its first charge).
    month = period_start(period="month", at=timezone.now())
    limit_on(tree.devices[1], 4 * MB, period_start=month)  # counted past: usage that happened is charged whole
    limit_on(tree.division, 80 * MB, period_start=month)
    limit_on(
        tree.team, 60 * MB, on_exceed="overage", overage_price=Decimal("0.10"), overage_per_units=MB, period_start=month
    )
    valid_since_yesterday()
    return tree


def charged(event_ids: list[int], *, monkeypatch, shared_rows_last: bool) -> tuple[dict, list[str]]:
    """The books after charging the batch one way, rolled back afterwards; and how it went."""
    ways = []
    attempt = covered_batches.covered_batch_charge

    def spied(**kwargs):
        try:
            if not shared_rows_last:
                raise covered_batches.SharedRowsMoved("this test charges with every row locked")
            attempt(**kwargs)
        except covered_batches.SharedRowsMoved:
            ways.append("all locked")
            raise
        ways.append("shared last")

    monkeypatch.setattr(usage_events, "covered_batch_charge", spied)
    with transaction.atomic():
        usage_events_charge(event_ids=event_ids)
        found = books()
        assert ledger_mismatches() == []
        transaction.set_rollback(True)
    return found, ways


def test_a_covered_batch_charges_shared_rows_last_and_books_what_the_locked_way_books(monkeypatch):
    tree = a_covered_company()
    event_ids = records(tree, count=18)

    last, ways = charged(event_ids, monkeypatch=monkeypatch, shared_rows_last=True)
    locked, _ = charged(event_ids, monkeypatch=monkeypatch, shared_rows_last=False)

    assert ways == ["shared last"]
    assert last == locked
    assert {status for _, status, *_ in last["events"]} == {UsageEvent.Status.CHARGED}
    device_limit = NodeLimit.objects.get(node=tree.devices[1])
    assert {pk: used for pk, used, _ in last["limits"]}[device_limit.pk] == 6 * MB  # past its 4 MB
    # The device's own limit (read as a plain row) noticed each threshold once, at what it reached.
    device_notices = [(percent, used) for _, limit, percent, used, _ in last["notices"] if limit == device_limit.pk]
    assert sorted(device_notices) == [(50, 6 * MB), (80, 6 * MB), (100, 6 * MB)]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(
            lambda tree: usage_events_charge(event_ids=records(tree, count=90, prefix="earlier")), id="pool runs out"
        ),
        pytest.param(
            lambda tree: NodeLimit.objects.filter(node=tree.team).update(used=55 * MB), id="overage limit reached"
        ),
        pytest.param(
            lambda tree: NodeLimit.objects.filter(node=tree.division).update(
                period_start=timezone.now() - timedelta(days=40)
            ),
            id="a shared limit's period rolls over",
        ),
    ],
)
def test_a_batch_its_allowances_do_not_cover_is_charged_the_locked_way_with_the_same_books(monkeypatch, setup):
    tree = a_covered_company()
    setup(tree)
    event_ids = records(tree, count=18)

    last, ways = charged(event_ids, monkeypatch=monkeypatch, shared_rows_last=True)
    locked, _ = charged(event_ids, monkeypatch=monkeypatch, shared_rows_last=False)

    assert ways == ["all locked"]
    assert last == locked


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pool=st.integers(1, 30),
    own=st.integers(0, 6),
    team=st.integers(1, 40),
    policy=st.sampled_from(["block", "throttle", "overage"]),
    quantities=st.lists(st.integers(1, 4), min_size=1, max_size=12),
)
def test_any_batch_books_the_same_whichever_way_it_is_charged(monkeypatch, pool, own, team, policy, quantities):
    """Pools and allowances that do or do not cover the batch, limits of each policy reached or
    not: charged shared rows last where it can be, the books are those of charging it with
    every row locked first."""
    with transaction.atomic():
        tree = company_tree(lines=3, pool_units=pool * MB, credit=Decimal("100"))
        Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
        if own:
            bucket_grant(line=tree.lines[0], name="Own", unit=Unit.BYTES, quantity=own * MB, priority=10)
        month = period_start(period="month", at=timezone.now())
        overage = {"overage_price": Decimal("0.10"), "overage_per_units": MB} if policy == "overage" else {}
        limit_on(tree.team, team * MB, on_exceed=policy, period_start=month, **overage)
        limit_on(tree.devices[1], 3 * MB, period_start=month)
        valid_since_yesterday()
        event_ids = [
            records(tree, count=1, quantity=quantity * MB, prefix=f"q{n}", lines=[tree.lines[n % 3]])[0]
            for n, quantity in enumerate(quantities)
        ]

        last, _ = charged(event_ids, monkeypatch=monkeypatch, shared_rows_last=True)
        locked, _ = charged(event_ids, monkeypatch=monkeypatch, shared_rows_last=False)

        assert last == locked
        transaction.set_rollback(True)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pool_drained_between_reading_and_locking_it_is_never_overdrawn(monkeypatch):
    """Another batch drains the pool after this one read it and before it locks it: the check
    sees it, and the batch is charged again with every row locked, from money past the pool."""
    require_postgres()
    tree = company_tree(lines=6, pool_units=20 * MB, credit=Decimal("100"))
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    valid_since_yesterday()
    mine = records(tree, count=12, prefix="mine", lines=tree.lines[:3])  # 12 MB, which the pool as read covers
    theirs = records(tree, count=15, prefix="theirs", lines=tree.lines[3:])  # 15 MB, charged in between
    settle = covered_batches._shared_rows_settle
    ways = []

    def others_first(**kwargs):
        if not ways:
            ways.append("theirs, in between")
            (outcome,) = run_together([lambda: usage_events_charge(event_ids=theirs)])
            assert outcome == len(theirs)
        return settle(**kwargs)

    monkeypatch.setattr(covered_batches, "_shared_rows_settle", others_first)
    assert usage_events_charge(event_ids=mine) == len(mine)

    pool = Bucket.objects.get(pk=tree.pool.pk)
    assert pool.remaining == 0
    events = UsageEvent.objects.filter(pk__in=mine + theirs)
    assert set(events.values_list("status", flat=True)) == {UsageEvent.Status.CHARGED}
    assert sum(events.values_list("units_from_buckets", flat=True)) == 20 * MB  # the pool, exactly once
    assert sum(events.values_list("amount_charged", flat=True)) == Decimal("0.07")  # 7 MB at the tariff
    assert ledger_mismatches() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_and_sessions_at_once_never_deadlock_nor_overdraw_the_pool():
    """Eight workers charge offline batches while eight open online sessions, all on lines of
    one tree (so the batches' lines' own limits and the sessions' paths cross): every record is
    charged once, the pool is drawn exactly to what was charged, and the ledger reconciles."""
    require_postgres()
    from charging.online import session_start, session_terminate

    tree = company_tree(lines=16, pool_units=40 * MB, credit=Decimal("1000"))
    Tariff.objects.create(name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, is_default=True)
    month = period_start(period="month", at=timezone.now())
    for device in tree.devices:
        limit_on(device, 6 * MB, period_start=month)
    limit_on(tree.team, 30 * MB, period_start=month)
    limit_on(tree.division, 35 * MB, period_start=month)
    valid_since_yesterday()
    batches = [records(tree, count=6, quantity=MB // 2, prefix=f"batch-{n}") for n in range(24)]
    connection.close()

    def charge_batches(worker: int) -> int:
        return sum(usage_events_charge(event_ids=batch) for batch in batches[worker::8])

    def open_sessions(worker: int) -> int:
        granted = 0
        for number in range(6):
            session_id = f"s{worker}-{number}"
            msisdn = tree.lines[(worker * 2 + number) % 16].msisdn
            units = session_start(session_id=session_id, msisdn=msisdn, service="data", requested_units=MB)
            session_terminate(session_id=session_id, request_number=1, used_units=units["granted_units"])
            granted += units["granted_units"]
        return granted

    calls = [lambda w=w: charge_batches(w) for w in range(8)] + [lambda w=w: open_sessions(w) for w in range(8)]
    outcomes = run_together(calls)

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    assert sum(outcomes[:8]) == 24 * 6
    events = UsageEvent.objects.filter(source="test")
    assert set(events.values_list("status", flat=True)) == {UsageEvent.Status.CHARGED}
    assert sum(events.values_list("units_from_buckets", flat=True)) <= 40 * MB
    pool = Bucket.objects.get(pk=tree.pool.pk)
    assert pool.remaining == 0  # 120 MB were used: the pool went first
    assert pool.reserved == 0
    assert ledger_mismatches() == []  # every unit the pool lost is in the ledger, once
