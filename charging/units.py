"""Services the network charges for and the integer unit each is counted in."""

from django.conf import settings
from django.db import models


class Unit(models.TextChoices):
    BYTES = "bytes", "Bytes"
    SECONDS = "seconds", "Seconds"
    MESSAGES = "messages", "Messages"
    ITEMS = "items", "Items"


class Service(models.TextChoices):
    DATA = "data", "Data"
    VOICE = "voice", "Voice"
    SMS = "sms", "SMS"
    VIDEO = "video", "Video conferencing"
    CONTENT = "content", "Content purchase"


class Zone(models.TextChoices):
    """Where the line is when it uses the service: at home, or roaming in a country group."""

    HOME = "home", "Home network"
    ROAM_EU = "roam_eu", "Roaming: EU"
    ROAM_WORLD = "roam_world", "Roaming: rest of world"


SERVICE_UNIT: dict[str, str] = {
    Service.DATA.value: Unit.BYTES.value,
    Service.VOICE.value: Unit.SECONDS.value,
    Service.SMS.value: Unit.MESSAGES.value,
    Service.VIDEO.value: Unit.SECONDS.value,
    Service.CONTENT.value: Unit.ITEMS.value,
}

# What a usage charge's ledger entries give as their reason. Every path that charges usage
# writes the same text: a batch sums its entries by reason.
USAGE_REASON: dict[str, str] = {service: f"{service} usage" for service in SERVICE_UNIT}

# Services whose units are time: a grant of them crosses time-of-day bands as it is used.
TIMED_SERVICES = frozenset({Service.VOICE.value, Service.VIDEO.value})
# Read once: an enum's ``values`` builds a new list on every access, and every request checks them.
SERVICES = frozenset(Service.values)
ZONES = frozenset(Zone.values)

MAX_UNITS = 2**63 - 1  # the database's bigint: the bound of a service with none of its own


def usage_quantity_limits() -> dict[str, int]:
    """The most one usage record, or one online request, may carry per service, in the
    service's unit (``CHARGING_MAX_UNITS``)."""
    return settings.CHARGING_MAX_UNITS


_MB = 1024 * 1024
_GB = 1024 * _MB


def format_units(quantity: int, unit: str) -> str:
    """How a quantity reads on the dashboard, e.g. ``1.25 GB``, ``12 min 05 s``, ``40 SMS``."""
    if unit == Unit.BYTES:
        if abs(quantity) >= _GB:
            return f"{quantity / _GB:,.2f} GB"  # display only; the stored value stays exact
        return f"{quantity / _MB:,.1f} MB"
    if unit == Unit.SECONDS:
        minutes, seconds = divmod(int(quantity), 60)
        return f"{minutes:,} min {seconds:02d} s"
    if unit == Unit.MESSAGES:
        return f"{quantity:,} SMS"
    return f"{quantity:,} {unit}"
