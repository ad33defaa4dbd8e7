"""Online charging in the style of Diameter credit control (RFC 4006).

A session starts with a grant (units reserved on allowances, limits and money), reports what
it used in updates (settled; more may be asked for) and ends with a terminate that settles the
rest and releases what was not used; a session that goes quiet is ended by expiry. Every
request carries the session id with a request number: a repeat gets the first answer and
changes nothing; a request out of order gets a clear error and changes nothing. Single
events are in ``charging.events``.

This module checks each request and routes it: to the quota store (``store``) when it is
on, else to the database (``database``). The store hands a session over to the database
when it must; neither path comes back here.
"""

from datetime import datetime

from charging.online import database, store
from charging.quota import quota_store_enabled
from charging.requests import (
    NETWORK,
    ChargingError,
    check_most,
    check_service_and_zone,
    check_units,
    session_request_key,
)
from charging.units import Zone


def session_start(
    *,
    session_id: str,
    msisdn: str,
    service: str,
    requested_units: int,
    zone: str = Zone.HOME,
    request_number: int = 0,
    source: str = NETWORK,
    at: datetime | None = None,
) -> dict:
    """Opens a session and grants up to ``requested_units`` (the answer says how many).
    Session ids are unique per ``source`` (the network element that sends them)."""
    check_service_and_zone(service=service, zone=zone)
    check_units(requested_units=requested_units)
    check_most(service=service, requested_units=requested_units)
    if request_number != 0:
        raise ChargingError("out_of_order", "A session starts with request number 0.", field="request_number")
    key = session_request_key(source, session_id, request_number)
    details = {"source": source, "session_id": session_id, "msisdn": msisdn, "service": service, "zone": zone}
    if quota_store_enabled():
        return store.session_start(key=key, **details, requested_units=requested_units, at=at)
    return database.session_start_in_database(key=key, **details, requested_units=requested_units, at=at)


def session_update(
    *,
    session_id: str,
    request_number: int,
    used_units: int,
    requested_units: int = 0,
    source: str = NETWORK,
    at: datetime | None = None,
) -> dict:
    """Settles what the session used since its last grant and grants more if asked (at most
    what one request of its service may carry: checked where the session is found)."""
    check_units(requested_units=requested_units, used_units=used_units)
    key = session_request_key(source, session_id, request_number)
    return _session_continue_routed(key, source, session_id, request_number, used_units, requested_units, at)


def session_terminate(
    *, session_id: str, request_number: int, used_units: int, source: str = NETWORK, at: datetime | None = None
) -> dict:
    """Settles the final usage and releases whatever was granted but not used."""
    check_units(used_units=used_units)
    key = session_request_key(source, session_id, request_number)
    return _session_continue_routed(key, source, session_id, request_number, used_units, None, at)


def _session_continue_routed(key, source, session_id, request_number, used, requested, at) -> dict:
    details = {"key": key, "source": source, "session_id": session_id, "request_number": request_number, "at": at}
    if quota_store_enabled():
        return store.session_continue(**details, used=used, requested=requested)
    return database.session_continue_in_database(**details, used=used, requested=requested)
