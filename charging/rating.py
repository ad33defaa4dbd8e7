"""Pricing usage that no allowance covers."""

from decimal import Decimal

from charging.models import Tariff
from portal.money import money_charge


def tariff_for(*, line_id: int, service: str) -> Tariff | None:
    """The line's rate plan's tariff for the service, else the operator default."""
    tariff = Tariff.objects.filter(rate_plan__line_assignments__line_id=line_id, service=service).first()
    return tariff or Tariff.objects.filter(service=service, is_default=True).first()


def rate_usage(*, line_id: int, service: str, units: int) -> Decimal:
    """The money price of ``units`` of ``service`` for the line, rounded up.

    Usage is first rounded up to the tariff's increment (e.g. whole kilobytes), so splitting
    a session into pieces never charges less than charging it whole.
    """
    tariff = tariff_for(line_id=line_id, service=service)
    if tariff is None or units <= 0:
        return Decimal(0)
    increments = -(-units // tariff.increment)  # ceiling division on integers
    billable = increments * tariff.increment
    return money_charge(tariff.price * billable / tariff.per_units)
