"""Price arithmetic: promotion phases, proration, billing periods. Pure functions, exact Decimals.

A promotion is a list of phases, each lasting some monthly periods; after the last phase the
normal rate applies. Period 0 is the period the product started in.
"""

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from portal.money import money

FREE = "free"
PERCENT = "percent"
FIXED = "fixed"
HUNDRED = Decimal(100)
D = TypeVar("D", date, datetime)


@dataclass(frozen=True)
class Phase:
    periods: int
    kind: str
    value: Decimal = Decimal(0)

    def describe(self) -> str:
        span = f"{self.periods} month" + ("s" if self.periods != 1 else "")
        if self.kind == FREE:
            return f"free for {span}"
        if self.kind == PERCENT:
            return f"{self.value.normalize():f}% off for {span}"
        return f"{money(self.value):.2f} off for {span}"

    def as_json(self) -> dict:
        return {"periods": self.periods, "kind": self.kind, "value": str(self.value)}


def phases_from_json(data: Iterable[dict]) -> list[Phase]:
    return [Phase(periods=int(p["periods"]), kind=p["kind"], value=Decimal(p["value"])) for p in data]


def phase_at(phases: Sequence[Phase], period_index: int) -> tuple[int, Phase] | None:
    """The phase (and its position) that covers the period, or None once the normal rate applies."""
    if period_index < 0:
        raise ValueError("periods count from 0")
    start = 0
    for position, phase in enumerate(phases):
        if period_index < start + phase.periods:
            return position, phase
        start += phase.periods
    return None


def discounted(base: Decimal, phase: Phase | None) -> Decimal:
    """The recurring price under one phase; never below zero, never above the base."""
    base = money(base)
    if phase is None:
        return base
    if phase.kind == FREE:
        return money(0)
    if phase.kind == PERCENT:
        return money(base * (HUNDRED - phase.value) / HUNDRED)
    if phase.kind == FIXED:
        return max(money(0), base - money(phase.value))
    raise ValueError(f"unknown phase kind {phase.kind!r}")


def period_price(base: Decimal, phases: Sequence[Phase], period_index: int) -> Decimal:
    found = phase_at(phases, period_index)
    return discounted(base, found[1] if found else None)


def term_total(base: Decimal, phases: Sequence[Phase], periods: int) -> Decimal:
    """What ``periods`` whole periods cost under the promotion."""
    return sum((period_price(base, phases, i) for i in range(periods)), money(0))


def prorate(amount: Decimal, days: int, days_in_period: int) -> Decimal:
    """The share of a period's amount for ``days`` of it. Exact complement: see ``prorate_split``."""
    if not 0 <= days <= days_in_period or days_in_period <= 0:
        raise ValueError("days must lie within the period")
    return money(money(amount) * days / days_in_period)


def prorate_split(amount: Decimal, days_used: int, days_in_period: int) -> tuple[Decimal, Decimal]:
    """Splits a period's amount into (used, unused) parts that add up to it to the last digit."""
    used = prorate(amount, days_used, days_in_period)
    return used, money(amount) - used


# --- Billing periods: calendar months in the account's time zone ------------------------------


def local_date(at: datetime, time_zone: str) -> date:
    return at.astimezone(ZoneInfo(time_zone)).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def months_between(start: date, later: date) -> int:
    """Whole calendar months from ``start``'s month to ``later``'s month."""
    return (later.year - start.year) * 12 + later.month - start.month


def add_months(day: D, months: int) -> D:
    """The same day ``months`` later (the month's last day if it is shorter); dates or datetimes."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    month += 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def period_charge(
    *, base: Decimal, phases: Sequence[Phase], period_index: int, active_days: int, period_days: int
) -> tuple[Decimal, Decimal]:
    """(base for the days, charge after promotion) for one period, prorated to the active days."""
    return (
        prorate(base, active_days, period_days),
        prorate(period_price(base, phases, period_index), active_days, period_days),
    )


def early_termination_fee(
    *, base: Decimal, phases: Sequence[Phase], from_period: int, contract_periods: int, percent: int
) -> Decimal:
    """A share of the recurring charges still to come in the contract term (after promotions)."""
    remaining = sum(
        (period_price(base, phases, i) for i in range(from_period, contract_periods)),
        money(0),
    )
    return money(remaining * percent / HUNDRED)
