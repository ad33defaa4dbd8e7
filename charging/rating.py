"""Pricing usage that no allowance covers.

Rating is pure: it takes a tariff, its rates and the usage, and returns what the usage costs,
split into the pieces priced differently (zone, time-of-day band, volume tier). Nothing here
reads the clock or the database except ``tariff_rates``; which tariff applies to a line is
decided by ``charging.grants.TariffCache``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal, localcontext

from django.utils import timezone

from charging.models import Tariff, TariffRate
from charging.units import TIMED_SERVICES
from portal.money import MONEY_MAX_DIGITS, money_charge

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
# Digits for summing price x units before the one division: far more than any product needs,
# so the sum is exact and the division, rounded towards +infinity, cannot round below a cent
# fraction that the ledger would then miss.
_RATING_PRECISION = 2 * MONEY_MAX_DIGITS + 40
_NO_LIMIT = 1 << 62  # "no boundary ahead": longer than any usage


@dataclass(frozen=True)
class RatedPiece:
    """A run of billable units that all cost the same price."""

    units: int  # billable units priced at this rate
    price: Decimal  # price of one block of per_units
    per_units: int
    starts_at: datetime  # when this piece of usage starts
    tier_from: int


@dataclass(frozen=True)
class Rating:
    """What a piece of usage costs, and how the price was made up."""

    units: int  # the usage units rated
    billable: int  # after first-increment/increment rounding
    amount: Decimal  # total, rounded UP once to the money scale (money_charge)
    pieces: tuple[RatedPiece, ...]


def tariff_rates(*, tariff: Tariff) -> list[TariffRate]:
    """The tariff's rates in one query (none if prefetched); callers keep the list, since
    ``rate`` and ``affordable_units`` may be called many times for one session."""
    return list(tariff.rates.all())


def _billable_total(*, units: int, increment: int, first_increment: int) -> int:
    """Billable units for a whole session of ``units``: the first increment at least, then
    whole increments. Rounding the session total (not each piece) is what makes a session
    reported in pieces pay exactly what it would pay whole."""
    if units <= 0:
        return 0
    step = max(increment, 1)
    return max(first_increment, -(-units // step) * step)


def rate(
    *,
    tariff: Tariff,
    rates: Sequence[TariffRate],
    zone: str,
    started_at: datetime,
    units: int,
    period_used: int = 0,
    session_used: int = 0,
    tz: tzinfo | None = None,
) -> Rating:
    """Price ``units`` of usage that start at ``started_at``, after ``session_used`` units of
    the same session and ``period_used`` units of the billing period.

    Billable unit number ``o`` of the session (counted from the session's start) is used at
    ``started_at + (o - session_used)`` seconds for timed services and when the period counter
    reads ``period_used + (o - session_used)``; each unit is priced by the rate matching it.
    So rating a session in consecutive pieces prices the same units at the same rates as
    rating it whole; only the single rounding up per piece can add to it.
    """
    if units <= 0:
        return Rating(units=0, billable=0, amount=money_charge(Decimal(0)), pieces=())
    if period_used < 0 or session_used < 0:
        raise ValueError("period_used and session_used must not be negative")
    if timezone.is_naive(started_at):
        raise ValueError("started_at must be timezone-aware")
    tz = tz or timezone.get_current_timezone()
    in_zone = [r for r in rates if r.zone in ("", zone)]
    timed = tariff.service in TIMED_SERVICES

    def total(n: int) -> int:
        return _billable_total(units=n, increment=tariff.increment, first_increment=tariff.first_increment)

    start, end = total(session_used), total(session_used + units)
    offset = start
    pieces: list[RatedPiece] = []
    while offset < end:
        elapsed = offset - session_used  # units since started_at; the rounding tail runs past the usage
        at = started_at + elapsed * _SECOND if timed else started_at
        counted = period_used + elapsed
        local = at.astimezone(tz)
        chosen = _rate_at(rates=in_zone, local_time=local.time(), counted=counted)
        length = min(
            end - offset,
            _units_to_next_tier(rates=in_zone, counted=counted),
            _seconds_to_next_band_edge(rates=in_zone, at=at, tz=tz) if timed else end - offset,
        )
        price, tier_from = (chosen.price, chosen.tier_from) if chosen else (tariff.price, 0)
        last = pieces[-1] if pieces else None
        if last and last.price == price and last.tier_from == tier_from:
            pieces[-1] = RatedPiece(
                units=last.units + length,
                price=price,
                per_units=last.per_units,
                starts_at=last.starts_at,
                tier_from=tier_from,
            )
        else:
            pieces.append(
                RatedPiece(units=length, price=price, per_units=tariff.per_units, starts_at=at, tier_from=tier_from)
            )
        offset += length

    with localcontext() as ctx:
        ctx.prec = _RATING_PRECISION
        ctx.rounding = ROUND_CEILING
        # All pieces share the tariff's per_units: sum exactly, then divide and round up once.
        amount = money_charge(sum((p.price * p.units for p in pieces), Decimal(0)) / tariff.per_units)
    return Rating(units=units, billable=end - start, amount=amount, pieces=tuple(pieces))


def affordable_units(
    *,
    tariff: Tariff,
    rates: Sequence[TariffRate],
    zone: str,
    started_at: datetime,
    budget: Decimal,
    limit: int,
    period_used: int = 0,
    session_used: int = 0,
    tz: tzinfo | None = None,
) -> int:
    """The most units, up to ``limit``, whose rated amount stays within ``budget``.

    Used to size a grant from money: the amount never falls as units grow (prices are not
    negative), so a binary search finds the largest affordable count. 0 when even one unit
    is too dear, or the budget is negative.
    """

    def fits(n: int) -> bool:
        rating = rate(
            tariff=tariff,
            rates=rates,
            zone=zone,
            started_at=started_at,
            units=n,
            period_used=period_used,
            session_used=session_used,
            tz=tz,
        )
        return rating.amount <= budget

    low, high = 0, max(limit, 0)  # invariant: fits(low) (or low == 0); nothing above high fits
    if fits(high):
        return high
    while low < high - 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _band_contains(rate: TariffRate, local_time: time) -> bool:
    """Whether the local wall-clock time falls in the rate's band, [start, end); a band whose
    end is not after its start wraps midnight (22:00-06:00); no band is all day."""
    start, end = rate.band_start, rate.band_end
    if start is None or end is None:
        return True
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end


def _rate_at(*, rates: Sequence[TariffRate], local_time: time, counted: int) -> TariffRate | None:
    """The most specific matching rate: a zone of its own beats any zone, then a band beats
    all day, then the highest tier reached. ``rates`` are already those of the zone."""
    matching = [r for r in rates if r.tier_from <= counted and _band_contains(r, local_time)]
    if not matching:
        return None
    return max(matching, key=lambda r: (r.zone != "", r.band_start is not None, r.tier_from))


def _units_to_next_tier(*, rates: Sequence[TariffRate], counted: int) -> int:
    """Units until the period counter reaches the next tier boundary of any rate."""
    ahead = [r.tier_from - counted for r in rates if r.tier_from > counted]
    return min(ahead, default=_NO_LIMIT)


def _seconds_to_next_band_edge(*, rates: Sequence[TariffRate], at: datetime, tz: tzinfo) -> int:
    """Whole seconds (each priced by its first instant) before the wall clock reaches a band
    start or end, or before the UTC offset changes (summer time), whichever comes first."""
    edges = {edge for r in rates for edge in (r.band_start, r.band_end) if edge is not None}
    if not edges:
        return _NO_LIMIT
    wall = at.astimezone(tz).replace(tzinfo=None)
    nearest = _DAY
    for edge in edges:
        reached = datetime.combine(wall.date(), edge.replace(tzinfo=None))
        if reached <= wall:
            reached += _DAY
        nearest = min(nearest, reached - wall)
    seconds = -(-nearest // _SECOND)  # ceiling: the second in which the edge falls starts before it
    # With one UTC offset the wall clock runs with real time, so the edge is reached after
    # ``nearest``; if the offset changes first, stop at the first second under the new offset.
    offset = at.astimezone(tz).utcoffset()
    if (at + (seconds - 1) * _SECOND).astimezone(tz).utcoffset() == offset:
        return seconds
    low, high = 0, seconds - 1  # at + low s has the old offset, at + high s has not
    while low < high - 1:
        middle = (low + high) // 2
        if (at + middle * _SECOND).astimezone(tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high
