"""``field__any`` finds exactly the rows ``field__in`` finds, whatever the values hold."""

import pytest

from portal.db.lookups import array_literal
from portal.models import Customer, Line
from tests.factories import CustomerFactory, LineFactory

pytestmark = pytest.mark.django_db

AWKWARD = ['say "hi"', "back\\slash", "a,b", "{braces}", "NULL", " spaced ", "tab\there", "ünï €"]


def test_ids_find_the_same_rows_as_in():
    lines = LineFactory.create_batch(4)
    wanted = [lines[0].pk, lines[2].pk, 10**12]  # one that exists nowhere

    assert set(Line.objects.filter(pk__any=wanted)) == set(Line.objects.filter(pk__in=wanted))
    assert {line.pk for line in Line.objects.filter(pk__any=wanted)} == {lines[0].pk, lines[2].pk}


def test_strings_with_quotes_backslashes_commas_and_braces_match_exactly():
    for name in [*AWKWARD, "not wanted", "say hi"]:
        CustomerFactory(name=name)

    found = sorted(Customer.objects.filter(name__any=AWKWARD).values_list("name", flat=True))

    assert found == sorted(AWKWARD)


def test_a_foreign_key_takes_the_lookup_too():
    line = LineFactory()
    LineFactory()

    assert list(Line.objects.filter(billing_account_id__any={line.billing_account_id})) == [line]


def test_no_values_find_nothing():
    LineFactory()

    assert list(Line.objects.filter(pk__any=[])) == []
    assert list(Line.objects.filter(msisdn__any=[])) == []


def test_whole_numbers_and_strings_travel_as_one_array_literal():
    assert array_literal([3, 1, 2]) == ("{3, 1, 2}", "bigint[]")
    assert array_literal(['a"b', "c\\d"]) == ('{"a\\"b","c\\\\d"}', "text[]")
    assert array_literal([True, 2]) is None  # not plain whole numbers: the driver adapts them
    assert array_literal([]) is None
