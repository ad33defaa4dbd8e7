"""Money is a Decimal with a fixed scale everywhere: four places, so per-kilobyte and
per-second prices keep their precision; amounts shown to people are rounded to cents."""

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

MONEY_MAX_DIGITS = 18
MONEY_DECIMAL_PLACES = 4
MONEY_QUANTUM = Decimal("0.0001")
CENT = Decimal("0.01")


def money(value: Decimal | int | str) -> Decimal:
    """Normalise to the ledger's scale; refuses floats, which cannot hold money exactly."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def money_charge(value: Decimal) -> Decimal:
    """A rated charge rounds up to the ledger's scale: the operator never under-charges."""
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_CEILING)


def format_money(amount: Decimal, currency: str = "EUR") -> str:
    symbol = {"EUR": "€", "USD": "$", "GBP": "£"}.get(currency, currency + " ")
    rounded = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_EVEN)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{symbol}{abs(rounded):,.2f}"
