"""Pricing usage that no allowance covers."""

from decimal import Decimal

from charging.models import Tariff
from portal.money import money_charge


def rate_usage(*, service: str, units: int) -> Decimal:
    """The money price of ``units`` of ``service`` under the default tariff, rounded up.

    Usage is first rounded up to the tariff's increment (e.g. whole kilobytes), so splitting
    a session into pieces never charges less than charging it whole.
    """
    tariff = Tariff.objects.filter(service=service, is_default=True).first()
    if tariff is None or units <= 0:
        return Decimal(0)
    increments = -(-units // tariff.increment)  # ceiling division on integers
    billable = increments * tariff.increment
    return money_charge(tariff.price * billable / tariff.per_units)
