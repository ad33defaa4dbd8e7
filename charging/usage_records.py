"""Parsing and checking a usage record as it arrives from the network.

A record that fails a check is not thrown away: the caller stores it as rejected, with the
field and the reason, so it can be replayed once the cause is fixed.
"""

import re
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from charging.requests import line_held_message
from charging.units import MAX_UNITS, SERVICE_UNIT, SERVICES, ZONES, Service, Zone, usage_quantity_limits
from portal.models import Line, LineHold

MAX_CLOCK_SKEW = timedelta(minutes=5)
_DIGITS = re.compile(r"[0-9]+")  # ASCII digits alone: int() would take "１２", " 12" and "1_2"
_HOME = Zone.HOME.value  # a plain string: an enum member's value is looked up on every access


class BatchLine(NamedTuple):
    """What a record of a batch needs of its line: its key and the causes of the holds standing
    on it (plain values, as a batch reads thousands)."""

    pk: int
    hold_causes: tuple[str, ...] = ()

    def standing_hold_causes(self) -> list[str]:
        return list(self.hold_causes)


class UsageRecord(NamedTuple):  # immutable, and cheap to make: a batch parses thousands
    external_id: str
    msisdn: str
    line: Line | BatchLine
    service: str
    zone: str
    unit: str
    quantity: int
    occurred_at: datetime


def usage_record_parse(
    payload: dict, *, now: datetime | None = None, lines: dict[str, BatchLine] | None = None
) -> tuple[UsageRecord | None, dict[str, str]]:
    """Returns the parsed record, or ``None`` and a reason per offending field. ``lines``:
    the lines of a batch by MSISDN, read at once (see ``lines_by_msisdn``)."""
    now = now or timezone.now()
    errors: dict[str, str] = {}

    external_id = payload.get("external_id")
    if not isinstance(external_id, str) or not external_id.strip():
        errors["external_id"] = "Required: the network's unique id of this record."
    elif len(external_id) > 100:
        errors["external_id"] = "At most 100 characters."

    service = payload.get("service")
    if not isinstance(service, str) or service not in SERVICES:
        errors["service"] = f"Unknown service {_shown(service)}; expected one of {', '.join(Service.values)}."
        service = None

    zone = payload.get("zone") or _HOME
    if not isinstance(zone, str) or zone not in ZONES:
        errors["zone"] = f"Unknown zone {_shown(zone)}; expected one of {', '.join(Zone.values)}."

    unit = payload.get("unit")
    expected_unit = SERVICE_UNIT.get(service) if service else None
    if unit is None:
        unit = expected_unit
    elif expected_unit and unit != expected_unit:
        errors["unit"] = f"Unknown unit {_shown(unit)} for {service}; expected {expected_unit!r}."

    quantity = payload.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int | str):
        errors["quantity"] = "Required: a whole number of units."
    elif isinstance(quantity, str) and not _DIGITS.fullmatch(quantity):
        errors["quantity"] = "Must be a whole number of units, in the digits 0-9."
    else:
        # A string of more digits than the bound has is past it without being converted.
        quantity = int(quantity) if isinstance(quantity, int) or len(quantity) <= 19 else MAX_UNITS + 1
        most = usage_quantity_limits().get(service, MAX_UNITS) if service else MAX_UNITS
        if quantity <= 0:
            errors["quantity"] = "Must be positive."
        elif quantity > most:
            errors["quantity"] = f"At most {most:,} {expected_unit or 'units'} per record" + (
                f" of {service}." if service else "."
            )

    occurred_at = payload.get("occurred_at")
    if occurred_at in (None, ""):
        occurred_at = now
    else:
        parsed = _datetime(occurred_at)
        if parsed is None:
            errors["occurred_at"] = "Must be an ISO 8601 date and time."
        elif timezone.is_naive(parsed):
            errors["occurred_at"] = "Must carry a time zone offset."
        elif parsed > now + MAX_CLOCK_SKEW:
            errors["occurred_at"] = "Lies in the future."
        elif parsed < now - usage_max_age():
            errors["occurred_at"] = f"Lies more than {usage_max_age().days} days in the past."
        else:
            occurred_at = parsed

    msisdn = payload.get("msisdn")
    line = None
    if not isinstance(msisdn, str) or not msisdn:
        errors["msisdn"] = "Required: the line's MSISDN."
    else:
        line = lines.get(msisdn) if lines is not None else Line.objects.with_held().filter(msisdn=msisdn).first()
        if line is None:
            errors["msisdn"] = f"Unknown line {msisdn}."
        elif barring := LineHold.causes_barring(line.standing_hold_causes(), service=service):
            errors["msisdn"] = line_held_message(msisdn, barring)

    if errors:
        return None, errors
    return (
        UsageRecord(
            external_id=external_id,
            msisdn=msisdn,
            line=line,
            service=service,
            zone=zone,
            unit=unit,
            quantity=quantity,
            occurred_at=occurred_at,
        ),
        {},
    )


def usage_max_age() -> timedelta:
    """How old a usage record may be (``CHARGING_MAX_RECORD_AGE_DAYS``)."""
    return timedelta(days=settings.CHARGING_MAX_RECORD_AGE_DAYS)


def _datetime(value) -> datetime | None:
    """An ISO 8601 date and time, or None (a well-formed impossible date, 2024-02-30, too)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def _shown(value) -> str:
    """A value as a reason quotes it: a list or an object is named, not copied out."""
    if isinstance(value, str | int | float | bool) or value is None:
        return repr(value)[:60]
    return f"of type {type(value).__name__}"


def lines_by_msisdn(payloads: list[dict]) -> dict[str, BatchLine]:
    """The lines a batch of records names, in one query (and one more for the causes of any
    held)."""
    msisdns = {p.get("msisdn") for p in payloads if isinstance(p.get("msisdn"), str)}
    rows = list(Line.objects.with_held().filter(msisdn__any=msisdns).order_by().values_list("msisdn", "pk", "held"))
    held = [pk for _, pk, is_held in rows if is_held]
    causes = LineHold.objects.standing().filter(line_id__any=held).causes_by_line() if held else {}
    return {msisdn: BatchLine(pk, tuple(causes.get(pk, ()))) for msisdn, pk, _ in rows}
