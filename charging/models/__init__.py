"""The charging app's models: tariffs, balances and the ledger, usage and sessions.

Quantities are integers in their smallest unit (bytes, seconds, messages); money is a Decimal
with the ledger's fixed scale. A balance changes only together with a ledger row that says
what, why, by whom and when, so every balance equals the sum of its ledger.
"""

from charging.models.balances import Bucket, LedgerEntry, MoneyBalance, NodeLimit
from charging.models.credentials import NetworkCredential
from charging.models.fields import MoneyField
from charging.models.tariffs import BucketDefinition, LineRatePlan, RatePlan, Tariff, TariffRate
from charging.models.usage import (
    ChargingRequest,
    ChargingSession,
    QuotaLogPosition,
    QuotaLogSetAside,
    Reservation,
    ReservationHold,
    ThresholdNotice,
    UsageChargeSweep,
    UsageEvent,
    UsageEventReplay,
    UsageQueueBacklog,
)

__all__ = [
    "Bucket",
    "BucketDefinition",
    "ChargingRequest",
    "ChargingSession",
    "LedgerEntry",
    "LineRatePlan",
    "MoneyBalance",
    "MoneyField",
    "NetworkCredential",
    "NodeLimit",
    "QuotaLogPosition",
    "QuotaLogSetAside",
    "RatePlan",
    "Reservation",
    "ReservationHold",
    "Tariff",
    "TariffRate",
    "ThresholdNotice",
    "UsageChargeSweep",
    "UsageEvent",
    "UsageQueueBacklog",
    "UsageEventReplay",
]
