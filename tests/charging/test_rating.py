from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charging.models import Tariff, TariffRate
from charging.rating import RatedPiece, affordable_units, rate, tariff_rates
from charging.units import TIMED_SERVICES, Service, Zone

AMS = ZoneInfo("Europe/Amsterdam")
MB = 1024 * 1024
HOME, EU = Zone.HOME.value, Zone.ROAM_EU.value


def tariff(service=Service.VOICE, price="0.06", per_units=60, increment=1, first_increment=0):
    return Tariff(
        name="Test",
        service=service,
        price=Decimal(price),
        per_units=per_units,
        increment=increment,
        first_increment=first_increment,
    )


def tariff_rate(of, price, zone="", band=None, tier_from=0):
    start, end = band or (None, None)
    return TariffRate(tariff=of, zone=zone, band_start=start, band_end=end, tier_from=tier_from, price=Decimal(price))


def local(*args):
    return datetime(*args, tzinfo=AMS)


def test_voice_first_increment_bills_a_minute_for_one_second_and_then_by_the_second():
    voice = tariff(price="0.60", per_units=60, first_increment=60, increment=1)

    one = rate(tariff=voice, rates=[], zone=HOME, started_at=local(2025, 5, 5, 10), units=1, tz=AMS)
    sixty_one = rate(tariff=voice, rates=[], zone=HOME, started_at=local(2025, 5, 5, 10), units=61, tz=AMS)

    assert (one.units, one.billable, one.amount) == (1, 60, Decimal("0.6000"))
    assert (sixty_one.billable, sixty_one.amount) == (61, Decimal("0.6100"))


def test_data_rounds_one_byte_up_to_a_kilobyte_and_the_amount_up_to_the_ledger_scale():
    data = tariff(service=Service.DATA, price="0.01", per_units=MB, increment=1024)

    rating = rate(tariff=data, rates=[], zone=HOME, started_at=local(2025, 5, 5, 10), units=1, tz=AMS)

    # 0.01 * 1024 / 1048576 = 0.0000097656... -> 0.0001 up
    assert (rating.billable, rating.amount) == (1024, Decimal("0.0001"))


def test_later_piece_of_a_session_pays_nothing_inside_the_first_increment_already_billed():
    voice = tariff(price="0.60", per_units=60, first_increment=60)

    rating = rate(tariff=voice, rates=[], zone=HOME, started_at=local(2025, 5, 5, 10), units=59, session_used=1)

    assert (rating.billable, rating.amount, rating.pieces) == (0, Decimal("0.0000"), ())


def test_no_usage_is_free_and_has_no_pieces():
    voice = tariff(first_increment=60)

    rating = rate(tariff=voice, rates=[], zone=HOME, started_at=local(2025, 5, 5, 10), units=0)

    assert (rating.billable, rating.amount, rating.pieces) == (0, Decimal("0.0000"), ())


def test_call_across_the_end_of_peak_pays_each_side_of_18_00_its_own_price():
    voice = tariff(price="0.06", per_units=60)
    peak = tariff_rate(voice, "0.12", band=(time(8), time(18)))

    rating = rate(tariff=voice, rates=[peak], zone=HOME, started_at=local(2025, 5, 5, 17, 59), units=120, tz=AMS)

    assert rating.pieces == (
        RatedPiece(units=60, price=Decimal("0.12"), per_units=60, starts_at=local(2025, 5, 5, 17, 59), tier_from=0),
        RatedPiece(units=60, price=Decimal("0.06"), per_units=60, starts_at=local(2025, 5, 5, 18), tier_from=0),
    )
    assert rating.amount == Decimal("0.1800")


def test_night_band_wraps_midnight():
    voice = tariff(price="0.06", per_units=60)
    night = tariff_rate(voice, "0.03", band=(time(22), time(6)))

    def amount(start, seconds):
        return rate(tariff=voice, rates=[night], zone=HOME, started_at=start, units=seconds, tz=AMS).amount

    assert amount(local(2025, 5, 5, 23, 59, 30), 60) == Decimal("0.0300")  # night on both sides of midnight
    assert amount(local(2025, 5, 6, 5, 59, 30), 60) == Decimal("0.0450")  # 30 s night + 30 s day
    assert amount(local(2025, 5, 5, 21, 59), 120) == Decimal("0.0900")  # 60 s day + 60 s night


def test_night_band_follows_the_wall_clock_across_the_summer_time_change():
    voice = tariff(price="0.06", per_units=60)
    night = tariff_rate(voice, "0.03", band=(time(22), time(6)))
    # 01:00 CET; clocks jump 02:00 -> 03:00, so 06:00 CEST comes 4 real hours later.
    start = datetime(2025, 3, 30, 0, tzinfo=UTC)

    rating = rate(tariff=voice, rates=[night], zone=HOME, started_at=start, units=6 * 3600, tz=AMS)

    assert [(p.units, p.price) for p in rating.pieces] == [(4 * 3600, Decimal("0.03")), (2 * 3600, Decimal("0.06"))]
    assert rating.pieces[1].starts_at == datetime(2025, 3, 30, 6, tzinfo=AMS)
    assert rating.amount == Decimal("14.4000")


def test_untimed_usage_is_priced_in_the_band_it_starts_in():
    sms = tariff(service=Service.SMS, price="0.10", per_units=1)
    peak = tariff_rate(sms, "0.20", band=(time(8), time(18)))

    rating = rate(tariff=sms, rates=[peak], zone=HOME, started_at=local(2025, 5, 5, 17, 59, 59), units=5, tz=AMS)

    assert [(p.units, p.price) for p in rating.pieces] == [(5, Decimal("0.20"))]
    assert rating.amount == Decimal("1.0000")


def test_usage_crossing_a_volume_tier_is_split_at_the_tier_boundary():
    data = tariff(service=Service.DATA, price="0.01", per_units=MB, increment=1024)
    bulk = tariff_rate(data, "0.005", tier_from=10 * MB)

    rating = rate(
        tariff=data, rates=[bulk], zone=HOME, started_at=local(2025, 5, 5, 10), units=2 * MB, period_used=9 * MB
    )

    assert [(p.units, p.price, p.tier_from) for p in rating.pieces] == [
        (MB, Decimal("0.01"), 0),
        (MB, Decimal("0.005"), 10 * MB),
    ]
    assert rating.amount == Decimal("0.0150")


def test_highest_tier_reached_wins():
    data = tariff(service=Service.DATA, price="0.01", per_units=MB)
    rates = [tariff_rate(data, "0.008", tier_from=MB), tariff_rate(data, "0.004", tier_from=2 * MB)]

    rating = rate(tariff=data, rates=rates, zone=HOME, started_at=local(2025, 5, 5, 10), units=3 * MB)

    assert [(p.units, p.price) for p in rating.pieces] == [
        (MB, Decimal("0.01")),
        (MB, Decimal("0.008")),
        (MB, Decimal("0.004")),
    ]
    assert rating.amount == Decimal("0.0220")


def test_roaming_rate_applies_only_in_its_zone():
    data = tariff(service=Service.DATA, price="0.01", per_units=MB)
    eu = tariff_rate(data, "0.05", zone=EU)

    def amount(zone):
        return rate(tariff=data, rates=[eu], zone=zone, started_at=local(2025, 5, 5, 10), units=MB).amount

    assert amount(EU) == Decimal("0.0500")
    assert amount(HOME) == Decimal("0.0100")


def test_zone_rate_beats_any_zone_band_and_a_band_beats_all_day():
    voice = tariff(price="0.06", per_units=60)
    any_zone_peak = tariff_rate(voice, "0.12", band=(time(8), time(18)))
    eu_all_day = tariff_rate(voice, "0.30", zone=EU)
    eu_peak = tariff_rate(voice, "0.40", zone=EU, band=(time(8), time(18)))
    rates = [any_zone_peak, eu_all_day, eu_peak]

    def price(zone, hour):
        rating = rate(tariff=voice, rates=rates, zone=zone, started_at=local(2025, 5, 5, hour), units=60, tz=AMS)
        return rating.pieces[0].price

    assert (price(HOME, 10), price(HOME, 20)) == (Decimal("0.12"), Decimal("0.06"))
    assert (price(EU, 10), price(EU, 20)) == (Decimal("0.40"), Decimal("0.30"))


def test_a_band_beats_a_higher_tier_that_applies_all_day():
    voice = tariff(price="0.06", per_units=60)
    peak = tariff_rate(voice, "0.12", band=(time(8), time(18)))
    bulk = tariff_rate(voice, "0.02", tier_from=100)

    rating = rate(
        tariff=voice, rates=[peak, bulk], zone=HOME, started_at=local(2025, 5, 5, 10), units=60, period_used=200, tz=AMS
    )

    assert [(p.units, p.price, p.tier_from) for p in rating.pieces] == [(60, Decimal("0.12"), 0)]


def test_amount_is_rounded_up_once_over_all_pieces():
    voice = tariff(price="0.0001", per_units=3)
    peak = tariff_rate(voice, "0.0002", band=(time(8), time(18)))

    rating = rate(tariff=voice, rates=[peak], zone=HOME, started_at=local(2025, 5, 5, 17, 59, 59), units=2, tz=AMS)

    # (0.0002 + 0.0001) / 3 = 0.0001 exactly; rounding each piece up would make it 0.0002.
    assert len(rating.pieces) == 2
    assert rating.amount == Decimal("0.0001")


def test_affordable_units_is_the_most_the_budget_pays_for():
    voice = tariff(price="0.60", per_units=60, first_increment=60)

    def affordable(budget):
        return affordable_units(
            tariff=voice, rates=[], zone=HOME, started_at=local(2025, 5, 5, 10), budget=Decimal(budget), limit=3600
        )

    assert affordable("0.5999") == 0
    assert affordable("0.60") == 60
    assert affordable("0.6550") == 65
    assert affordable("1000") == 3600


@pytest.mark.django_db
def test_a_tariffs_rates_load_in_one_query(django_assert_num_queries):
    data = Tariff.objects.create(
        name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, increment=1024, is_default=True
    )
    TariffRate.objects.create(tariff=data, zone=EU, price=Decimal("0.05"))

    with django_assert_num_queries(1):
        rates = tariff_rates(tariff=data)

    assert [r.price for r in rates] == [Decimal("0.0500")]


# Properties over random tariffs, rates and usage.

money_prices = st.decimals(min_value=0, max_value=Decimal("0.5"), places=4)
band_edges = st.builds(time, st.integers(0, 23), st.sampled_from([0, 30, 59]), st.sampled_from([0, 30]))
bands = st.none() | st.tuples(band_edges, band_edges)
# Random instants, and some just before the summer time changes in Amsterdam.
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
) | st.builds(
    lambda base, back: base - timedelta(seconds=back),
    st.sampled_from([datetime(2025, 3, 30, 1, tzinfo=UTC), datetime(2025, 10, 26, 1, tzinfo=UTC)]),
    st.integers(0, 3 * 3600),
)


@st.composite
def priced(draw):
    service = draw(st.sampled_from([Service.VOICE, Service.DATA, Service.SMS]))
    the_tariff = tariff(
        service=service,
        price=draw(money_prices),
        per_units=draw(st.sampled_from([1, 3, 60, 1024])),
        increment=draw(st.sampled_from([1, 7, 60])),
        first_increment=draw(st.sampled_from([0, 30, 60])),
    )
    rates = draw(
        st.lists(
            st.builds(
                tariff_rate,
                st.just(the_tariff),
                money_prices,
                zone=st.sampled_from(["", HOME, EU]),
                band=bands,
                tier_from=st.sampled_from([0, 0, 50, 500, 2000]),
            ),
            max_size=4,
        )
    )
    zone = draw(st.sampled_from([HOME, EU]))
    return the_tariff, rates, zone


def in_band(r, wall):
    if r.band_start is None:
        return True
    if r.band_start < r.band_end:
        return r.band_start <= wall < r.band_end
    return not r.band_end <= wall < r.band_start


def reference_amount(the_tariff, rates, zone, started_at, units, period_used, session_used):
    """Price each billable unit on its own, straight from the rules."""

    def total(n):
        return 0 if n == 0 else max(the_tariff.first_increment, -(-n // the_tariff.increment) * the_tariff.increment)

    summed = Decimal(0)
    for unit in range(total(session_used), total(session_used + units)):
        elapsed = unit - session_used
        at = started_at + timedelta(seconds=elapsed) if the_tariff.service in TIMED_SERVICES else started_at
        wall = at.astimezone(AMS).time()
        matching = [
            r for r in rates if r.zone in ("", zone) and r.tier_from <= period_used + elapsed and in_band(r, wall)
        ]
        best = max(matching, key=lambda r: (r.zone != "", r.band_start is not None, r.tier_from), default=None)
        summed += best.price if best else the_tariff.price
    ten_thousandths = -(-int(summed * 10_000) // the_tariff.per_units)  # exact ceiling: prices have 4 places
    return Decimal(ten_thousandths).scaleb(-4)


@settings(max_examples=100, deadline=None)
@given(priced(), instants, st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 200))
def test_rating_prices_every_billable_unit_by_its_own_rate(setup, started_at, units, period_used, session_used):
    the_tariff, rates, zone = setup
    rating = rate(
        tariff=the_tariff,
        rates=rates,
        zone=zone,
        started_at=started_at,
        units=units,
        period_used=period_used,
        session_used=session_used,
        tz=AMS,
    )

    assert rating.amount == reference_amount(the_tariff, rates, zone, started_at, units, period_used, session_used)
    assert sum(p.units for p in rating.pieces) == rating.billable


@settings(max_examples=100, deadline=None)
@given(priced(), instants, st.lists(st.integers(1, 1500), min_size=1, max_size=5), st.integers(0, 3000))
def test_rating_a_session_in_pieces_never_charges_less_than_rating_it_whole(setup, started_at, pieces, period_used):
    the_tariff, rates, zone = setup
    timed = the_tariff.service in TIMED_SERVICES

    def rated(units, used, at, period):
        return rate(
            tariff=the_tariff,
            rates=rates,
            zone=zone,
            started_at=at,
            units=units,
            period_used=period,
            session_used=used,
            tz=AMS,
        )

    whole = rated(sum(pieces), 0, started_at, period_used)
    charged, billable, used = Decimal(0), 0, 0
    for units in pieces:
        at = started_at + timedelta(seconds=used) if timed else started_at
        piece = rated(units, used, at, period_used + used)
        charged += piece.amount
        billable += piece.billable
        used += units

    assert billable == whole.billable
    assert charged >= whole.amount


@settings(max_examples=100, deadline=None)
@given(priced(), instants, st.integers(0, 3000), st.integers(1, 500), st.integers(0, 3000), st.integers(0, 200))
def test_amount_never_falls_as_units_grow(setup, started_at, units, more, period_used, session_used):
    the_tariff, rates, zone = setup

    def amount(n):
        return rate(
            tariff=the_tariff,
            rates=rates,
            zone=zone,
            started_at=started_at,
            units=n,
            period_used=period_used,
            session_used=session_used,
            tz=AMS,
        ).amount

    assert amount(units) <= amount(units + more)


@settings(max_examples=100, deadline=None)
@given(
    priced(),
    instants,
    st.decimals(min_value=0, max_value=5, places=4),
    st.integers(0, 5000),
    st.integers(0, 3000),
    st.integers(0, 200),
)
def test_affordable_units_is_the_largest_count_within_budget(
    setup, started_at, budget, limit, period_used, session_used
):
    the_tariff, rates, zone = setup
    common = {
        "tariff": the_tariff,
        "rates": rates,
        "zone": zone,
        "started_at": started_at,
        "period_used": period_used,
        "session_used": session_used,
        "tz": AMS,
    }

    n = affordable_units(budget=budget, limit=limit, **common)

    assert 0 <= n <= limit
    assert rate(units=n, **common).amount <= budget
    if n < limit:
        assert rate(units=n + 1, **common).amount > budget
