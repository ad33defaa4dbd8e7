"""Parsing and checking a usage record as it arrives from the network.

A record that fails a check is not thrown away: the caller stores it as rejected, with the
field and the reason, so it can be replayed once the cause is fixed.
"""

from datetime import datetime, timedelta
from typing import NamedTuple

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from charging.requests import line_held_message
from charging.units import SERVICE_UNIT, SERVICES, ZONES, Service, Zone
from portal.models import Line, LineHold

MAX_CLOCK_SKEW = timedelta(minutes=5)
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
        errors["service"] = f"Unknown service {service!r}; expected one of {', '.join(Service.values)}."

    zone = payload.get("zone") or _HOME
    if not isinstance(zone, str) or zone not in ZONES:
        errors["zone"] = f"Unknown zone {zone!r}; expected one of {', '.join(Zone.values)}."

    unit = payload.get("unit")
    expected_unit = SERVICE_UNIT.get(service)
    if unit is None:
        unit = expected_unit
    elif expected_unit and unit != expected_unit:
        errors["unit"] = f"Unknown unit {unit!r} for {service}; expected {expected_unit!r}."

    quantity = payload.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int | str):
        errors["quantity"] = "Required: a whole number of units."
    else:
        try:
            quantity = int(quantity)
        except ValueError:
            errors["quantity"] = "Must be a whole number of units."
        else:
            if quantity <= 0:
                errors["quantity"] = "Must be positive."

    occurred_at = payload.get("occurred_at")
    if occurred_at in (None, ""):
        occurred_at = now
    else:
        parsed = parse_datetime(occurred_at) if isinstance(occurred_at, str) else None
        if parsed is None:
            errors["occurred_at"] = "Must be an ISO 8601 date and time."
        elif timezone.is_naive(parsed):
            errors["occurred_at"] = "Must carry a time zone offset."
        elif parsed > now + MAX_CLOCK_SKEW:
            errors["occurred_at"] = "Lies in the future."
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


def lines_by_msisdn(payloads: list[dict]) -> dict[str, BatchLine]:
    """The lines a batch of records names, in one query (and one more for the causes of any
    held)."""
    msisdns = {p.get("msisdn") for p in payloads if isinstance(p.get("msisdn"), str)}
    rows = list(Line.objects.with_held().filter(msisdn__any=msisdns).order_by().values_list("msisdn", "pk", "held"))
    held = [pk for _, pk, is_held in rows if is_held]
    causes = LineHold.objects.standing().filter(line_id__any=held).causes_by_line() if held else {}
    return {msisdn: BatchLine(pk, tuple(causes.get(pk, ()))) for msisdn, pk, _ in rows}
