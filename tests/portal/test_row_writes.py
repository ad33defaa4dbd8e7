"""Writing many rows in one statement: keys come back in the order the rows were given, and
fields not named take their model defaults."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from charging.models import Bucket, LedgerEntry, MoneyBalance, NodeLimit, UsageEvent
from charging.offline import usage_batch_ingest
from charging.usage_events import usage_events_charge
from portal.db import rows as row_updates
from portal.db.rows import rows_insert, rows_update
from tests.charging.trees import MB, company_tree
from tests.factories import LineFactory, data_bucket
from tests.services import require_postgres

pytestmark = pytest.mark.django_db


def test_inserted_rows_get_their_keys_in_order_and_their_defaults():
    line = LineFactory()
    fields = ("source", "external_id", "payload", "line_id", "quantity")
    rows = [("test", f"r-{n}", {"n": n, "text": "50% off"}, line.pk if n % 2 else None, n) for n in range(7)]

    pks = rows_insert(UsageEvent, fields, rows)

    stored = {event.pk: event for event in UsageEvent.objects.filter(pk__in=pks)}
    assert [stored[pk].external_id for pk in pks] == [f"r-{n}" for n in range(7)]
    assert [stored[pk].payload for pk in pks] == [{"n": n, "text": "50% off"} for n in range(7)]
    assert [stored[pk].line_id for pk in pks] == [line.pk if n % 2 else None for n in range(7)]
    first = stored[pks[0]]
    assert (first.status, first.errors, first.units_from_buckets, first.charged_at) == ("received", {}, 0, None)
    assert first.received_at is not None


def test_plain_rows_update_their_columns():
    pks = rows_insert(UsageEvent, ("source", "external_id"), [("test", "a"), ("test", "b")])

    class Row:
        def __init__(self, pk, status, units_from_buckets):
            self.pk, self.status, self.units_from_buckets = pk, status, units_from_buckets

    rows_update(UsageEvent, [Row(pks[0], "charged", 5), Row(pks[1], "charged", 7)], ["status", "units_from_buckets"])

    assert sorted(UsageEvent.objects.values_list("external_id", "status", "units_from_buckets")) == [
        ("a", "charged", 5),
        ("b", "charged", 7),
    ]


@pytest.mark.parametrize("rows", [2, 250], ids=["a few rows", "more than a COPY's worth"])
def test_rows_update_text_and_numbers_as_they_are(rows):
    """Whole numbers and strings travel as array literals: every awkward string comes back."""
    awkward = ['quote " and \\ backslash', "comma, {braces}", "NULL", "", "  spaces\ttab", "naïve €"]
    pks = rows_insert(UsageEvent, ("source", "external_id"), [("test", f"r-{n}") for n in range(rows)])

    class Row:
        def __init__(self, pk, n):
            self.pk, self.ledger_reference, self.units_from_buckets = pk, awkward[n % len(awkward)], n - 1

    rows_update(UsageEvent, [Row(pk, n) for n, pk in enumerate(pks)], ["ledger_reference", "units_from_buckets"])

    found = dict(UsageEvent.objects.values_list("pk", "ledger_reference"))
    assert [found[pk] for pk in pks] == [awkward[n % len(awkward)] for n in range(rows)]
    assert sorted(UsageEvent.objects.values_list("units_from_buckets", flat=True)) == list(range(-1, rows - 1))


@pytest.fixture
def by_copy(monkeypatch):
    """Every write of a handful of rows takes the path of a big batch (``COPY``, on PostgreSQL)."""
    monkeypatch.setattr(row_updates, "COPY_FROM", 1)


@pytest.mark.parametrize("path", ["arrays", "copy"])
def test_inserted_rows_keep_keys_order_defaults_and_awkward_values(path, monkeypatch):
    if path == "copy":
        monkeypatch.setattr(row_updates, "COPY_FROM", 1)
    line = LineFactory()
    awkward = "tab\there, new\nline, back\\slash, quote ' and \" and 50%, {braces}, NULL"
    at = timezone.now()
    fields = ("source", "external_id", "payload", "line_id", "quantity", "reason", "amount_charged", "occurred_at")
    rows = [
        ("test", f"r-{n}", {"note": awkward, "n": n}, line.pk if n % 2 else None, n, awkward, Decimal("-0.0001"), at)
        for n in range(5)
    ]

    pks = rows_insert(UsageEvent, fields, rows)

    stored = {event.pk: event for event in UsageEvent.objects.filter(pk__in=pks)}
    assert pks == sorted(pks)
    assert [stored[pk].external_id for pk in pks] == [f"r-{n}" for n in range(5)]
    assert {stored[pk].reason for pk in pks} == {awkward}
    assert [stored[pk].payload for pk in pks] == [{"note": awkward, "n": n} for n in range(5)]
    assert [stored[pk].line_id for pk in pks] == [line.pk if n % 2 else None for n in range(5)]
    assert {(stored[pk].amount_charged, stored[pk].occurred_at) for pk in pks} == {(Decimal("-0.0001"), at)}
    assert (stored[pks[0]].status, stored[pks[0]].errors, stored[pks[0]].charged_at) == ("received", {}, None)


@pytest.mark.parametrize("path", ["arrays", "copy"])
def test_json_of_any_record_as_received_is_kept_whole(path, monkeypatch):
    """Whatever JSON a record arrives as comes back as it was: numbers past 64 bits, keys
    that are numbers, text that needs escaping at every level."""
    if path == "copy":
        monkeypatch.setattr(row_updates, "COPY_FROM", 1)
    payloads = [
        {"quantity": 10**30, "negative": -(2**70), "nested": {"list": [1, 2.5, None, True, 'ünï\t"quoted"\n']}},
        {1: "a key that is a number", "tab\tkey": "back\\slash", "empty": {}},
    ]

    pks = rows_insert(
        UsageEvent, ("source", "external_id", "payload"), [("test", f"j-{n}", p) for n, p in enumerate(payloads)]
    )

    stored = dict(UsageEvent.objects.filter(pk__in=pks).values_list("pk", "payload"))
    # A key that is a number is written as text, as JSON has it.
    as_json = {"1": "a key that is a number", "tab\tkey": "back\\slash", "empty": {}}
    assert [stored[pk] for pk in pks] == [payloads[0], as_json]


@pytest.mark.parametrize("path", ["arrays", "copy"])
def test_a_nullable_json_field_left_out_or_given_none_is_sql_null(path, monkeypatch):
    """As Django saves it: not JSON's null, which ``isnull`` does not find."""
    if path == "copy":
        monkeypatch.setattr(row_updates, "COPY_FROM", 1)
    bucket = data_bucket(LineFactory(), MB)
    fields = ("billing_account_id", "kind", "bucket_id", "units", "reason")
    left_out = rows_insert(LedgerEntry, fields, [(bucket.billing_account_id, "usage", bucket.pk, 0, "left out")])
    given = rows_insert(
        LedgerEntry, (*fields, "terms"), [(bucket.billing_account_id, "usage", bucket.pk, 0, "given", None)]
    )

    assert not LedgerEntry.objects.filter(pk__in=[*left_out, *given], terms__isnull=False).exists()


def test_big_batches_update_twice_in_one_transaction(by_copy):
    pks = rows_insert(UsageEvent, ("source", "external_id"), [("test", "a"), ("test", "b")])
    events = list(UsageEvent.objects.filter(pk__in=pks).order_by("pk"))

    with transaction.atomic():
        for event, units in zip(events, (5, 7), strict=True):
            event.units_from_buckets, event.amount_charged = units, Decimal("0.1234")
        rows_update(UsageEvent, events, ["units_from_buckets", "amount_charged"])
        events[0].units_from_buckets = 9  # a second update of the same rows, same transaction
        rows_update(UsageEvent, events[:1], ["units_from_buckets", "amount_charged"])

    assert sorted(UsageEvent.objects.values_list("external_id", "units_from_buckets", "amount_charged")) == [
        ("a", 9, Decimal("0.1234")),
        ("b", 7, Decimal("0.1234")),
    ]


def test_a_duplicate_in_a_big_batch_is_an_integrity_error(by_copy):
    rows_insert(UsageEvent, ("source", "external_id"), [("test", "twin")])

    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(UsageEvent, ("source", "external_id"), [("test", "new"), ("test", "twin")])

    assert not UsageEvent.objects.filter(external_id="new").exists()


@pytest.mark.postgres
def test_tables_rewritten_by_charges_leave_room_on_their_pages_for_updated_rows():
    """So that rewriting a counter or marking a record charged is a same-page ("HOT") update,
    not one through every index."""
    require_postgres()
    tables = [model._meta.db_table for model in (NodeLimit, Bucket, MoneyBalance, UsageEvent)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [tables])
        options = dict(cursor.fetchall())
    assert options == {table: ["fillfactor=50"] for table in tables}


def _updates_of(model) -> tuple[int, int]:
    """The table's rows updated in this transaction so far: all, and those on their own page."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(%s::regclass), pg_stat_get_xact_tuples_hot_updated(%s::regclass)",
            [model._meta.db_table] * 2,
        )
        return cursor.fetchone()


@pytest.mark.postgres
def test_a_charged_batch_marks_each_record_on_its_own_page():
    """No column a charge writes is indexed: a record marked charged adds no index entry."""
    require_postgres()
    tree = company_tree(lines=3, pool_units=1000 * MB)
    records = [
        {"external_id": f"hot-{n}", "msisdn": tree.lines[n % 3].msisdn, "service": "data", "quantity": MB}
        for n in range(row_updates.COPY_FROM + 50)
    ]
    with transaction.atomic():
        event_ids = [outcome.event_id for outcome in usage_batch_ingest(payloads=records, source="test").outcomes]
    updated_before, same_page_before = _updates_of(UsageEvent)

    usage_events_charge(event_ids=event_ids)

    updated, same_page = _updates_of(UsageEvent)
    assert UsageEvent.objects.filter(pk__in=event_ids, status=UsageEvent.Status.CHARGED).count() == len(records)
    assert (updated - updated_before, same_page - same_page_before) == (len(records), len(records))
