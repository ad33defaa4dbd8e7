"""Promotion and proration arithmetic: exact Decimals, checked over many generated cases."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import pricing
from catalog.pricing import FIXED, FREE, PERCENT, Phase

prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("500"), places=2)
phases = st.lists(
    st.one_of(
        st.builds(Phase, periods=st.integers(1, 12), kind=st.just(FREE)),
        st.builds(Phase, periods=st.integers(1, 12), kind=st.just(PERCENT), value=st.integers(0, 100).map(Decimal)),
        st.builds(Phase, periods=st.integers(1, 12), kind=st.just(FIXED), value=prices),
    ),
    max_size=4,
)


def test_six_months_free_then_the_normal_rate_over_a_two_year_term():
    free = [Phase(periods=6, kind=FREE)]

    assert [pricing.period_price(Decimal("30"), free, i) for i in (0, 5, 6, 23)] == [
        Decimal("0.0000"),
        Decimal("0.0000"),
        Decimal("30.0000"),
        Decimal("30.0000"),
    ]
    assert pricing.term_total(Decimal("30"), free, 24) == Decimal("540.0000")


def test_a_percentage_then_a_fixed_discount_in_phases():
    promo = [Phase(periods=3, kind=PERCENT, value=Decimal("25")), Phase(periods=2, kind=FIXED, value=Decimal("5"))]

    assert pricing.term_total(Decimal("19.99"), promo, 12) == Decimal("214.8875")  # 3 x 14.9925 + 2 x 14.99 + 7 x 19.99


@given(base=prices, promo=phases, index=st.integers(0, 60))
def test_a_period_never_costs_less_than_nothing_or_more_than_the_normal_rate(base, promo, index):
    price = pricing.period_price(base, promo, index)

    assert Decimal(0) <= price <= base
    assert price == price.quantize(Decimal("0.0001"))


@given(base=prices, promo=phases, extra=st.integers(0, 24))
def test_after_the_last_phase_the_normal_rate_applies(base, promo, extra):
    after = sum(p.periods for p in promo) + extra

    assert pricing.period_price(base, promo, after) == base


@given(base=prices, promo=phases, months=st.integers(0, 36))
def test_the_term_total_is_the_sum_of_its_periods_and_grows_with_the_term(base, promo, months):
    total = pricing.term_total(base, promo, months)

    assert total == sum((pricing.period_price(base, promo, i) for i in range(months)), Decimal(0))
    assert pricing.term_total(base, promo, months + 1) >= total
    assert total <= base * months


@given(base=prices, months=st.integers(0, 36))
def test_without_a_promotion_the_term_costs_the_rate_times_the_months(base, months):
    assert pricing.term_total(base, [], months) == base * months


@given(amount=prices, period_days=st.integers(28, 31), data=st.data())
def test_prorated_parts_add_up_to_the_whole_to_the_last_digit(amount, period_days, data):
    used_days = data.draw(st.integers(0, period_days))

    used, unused = pricing.prorate_split(amount, used_days, period_days)

    assert used + unused == amount
    assert Decimal(0) <= used <= amount
    assert used == (amount * used_days / period_days).quantize(Decimal("0.0001"))


@given(amount=prices, period_days=st.integers(28, 31), data=st.data())
def test_more_days_never_cost_less(amount, period_days, data):
    days = data.draw(st.integers(0, period_days - 1))

    assert pricing.prorate(amount, days, period_days) <= pricing.prorate(amount, days + 1, period_days)


def test_a_month_started_on_the_21st_of_a_30_day_month_charges_ten_days():
    base, charge = pricing.period_charge(base=Decimal("30"), phases=[], period_index=0, active_days=10, period_days=30)

    assert (base, charge) == (Decimal("10.0000"), Decimal("10.0000"))


def test_the_early_termination_fee_is_a_share_of_the_charges_left_after_promotions():
    promo = [Phase(periods=6, kind=FREE)]

    fee = pricing.early_termination_fee(
        base=Decimal("30"), phases=promo, from_period=4, contract_periods=24, percent=50
    )

    assert fee == Decimal("270.0000")  # periods 6..23 at 30, halved


def test_prorating_refuses_days_outside_the_period():
    with pytest.raises(ValueError, match="within the period"):
        pricing.prorate(Decimal("10"), 31, 30)


def test_months_are_added_without_overflowing_short_months():
    assert pricing.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert pricing.add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
