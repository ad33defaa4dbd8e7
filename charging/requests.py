"""Online requests: their ids, answering each once, and the refusals the engine gives.

Every online request carries an id (a session id with a request number, or an event id),
unique per source. ``answer_once`` runs a request in one transaction unless its id was
answered before; the answer is kept, so a repeat gets it and changes nothing.
"""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from charging.models import ChargingRequest
from charging.units import MAX_UNITS, SERVICE_UNIT, SERVICES, ZONES, usage_quantity_limits
from portal.errors import Refusal
from portal.models import Line, LineHold


class ChargingError(Refusal):
    """A request the engine refuses; nothing was changed. ``code`` is stable for clients."""

    def as_answer(self) -> dict:
        """The refusal as the network API answers it (the API's one error body)."""
        return self.as_error()


NETWORK = "network"  # the id space of requests that name no source of their own

# The HTTP status of each kind of answer, kept with it: a repeat is answered with the first
# answer's status and body, whoever answers it (the database, or the quota store's copy).
ANSWER_STATUS = {"initial": 201, "event": 201, "update": 200, "terminate": 200, "refund": 200}


def answer_once(key: str, work) -> dict:
    """Runs ``work`` in one transaction unless ``key`` was answered before. A twin delivered
    at the same moment waits for the first (on the unique key or the session's lock) and
    gets its answer, not the refusal the changed state would give it."""
    stored = stored_answer(key)
    if stored is not None:
        return stored
    try:
        with transaction.atomic():
            return work()
    except (IntegrityError, ChargingError):
        stored = stored_answer(key)
        if stored is None:
            raise
        return stored


def stored_answer(key: str) -> dict | None:
    return ChargingRequest.objects.filter(key=key).values_list("answer", flat=True).first()


def answer_remember(key: str, kind: str, answer: dict) -> None:
    ChargingRequest.objects.create(key=key, kind=kind, answer=answer, status_code=ANSWER_STATUS[kind])


def session_request_key(source: str, session_id: str, request_number: int) -> str:
    if not session_id or len(session_id) > 100:
        raise ChargingError("invalid", "A session id of 1 to 100 characters is required.", field="session_id")
    return f"{source}:{session_id}#{request_number}"


def event_key(source: str, event_id: str) -> str:
    """Where a single event's answer is kept: event ids are unique per source."""
    if not event_id or len(event_id) > 100:
        raise ChargingError("invalid", "An event id of 1 to 100 characters is required.", field="event_id")
    return f"event:{source}:{event_id}"


def active_line(msisdn: str, *, service: str) -> Line:
    """The line, unless a hold standing on it bars ``service``; read in one query when no hold
    stands (nearly always)."""
    line = Line.objects.with_held().select_related("billing_account").filter(msisdn=msisdn).first()
    if line is None:
        raise ChargingError("unknown_line", f"Unknown line {msisdn}.", field="msisdn")
    barring = LineHold.causes_barring(line.standing_hold_causes(), service=service)
    if barring:
        raise ChargingError("line_inactive", line_held_message(msisdn, barring), field="msisdn")
    return line


def line_held_message(msisdn: str, causes: list[str]) -> str:
    return f"Line {msisdn} is held: {LineHold.causes_display(causes)}."


def line_barred(*, line_id: int, service: str) -> bool:
    """Whether a hold now bars the line's ``service`` (one placed while a session was open)."""
    causes = LineHold.objects.standing().filter(line_id=line_id).values_list("cause", flat=True)
    return bool(LineHold.causes_barring(causes, service=service))


def check_service_and_zone(*, service: str, zone: str) -> None:
    if service not in SERVICES:
        raise ChargingError("invalid", f"Unknown service {service!r}.", field="service")
    if zone not in ZONES:
        raise ChargingError("invalid", f"Unknown zone {zone!r}.", field="zone")


def check_units(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ChargingError("invalid", "Must be a whole number of units, not negative.", field=name)
    if counts.get("units") == 0:
        raise ChargingError("invalid", "Must be at least one unit.", field="units")


def check_most(*, service: str, **counts: int | None) -> None:
    """Refuses units past the most one request may carry for its service (``CHARGING_MAX_UNITS``)."""
    most = usage_quantity_limits().get(service, MAX_UNITS)
    for name, value in counts.items():
        if value is not None and value > most:
            unit = SERVICE_UNIT.get(service, "units")
            raise ChargingError("invalid", f"At most {most:,} {unit} per request of {service}.", field=name)


def grant_validity() -> timedelta:
    """How long a session's grant holds its units: one that is not reported by then expires."""
    return timedelta(seconds=getattr(settings, "CHARGING_GRANT_VALIDITY_SECONDS", 300))
