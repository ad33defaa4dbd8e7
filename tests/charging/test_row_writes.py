"""Writing many rows in one statement: keys come back in the order the rows were given, and
fields not named take their model defaults."""

import pytest

from charging.models import UsageEvent
from charging.row_updates import rows_insert, rows_update
from tests.factories import LineFactory

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
