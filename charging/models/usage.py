"""Usage as it arrives and is charged: records, online sessions with their reservations,
request answers kept for repeats, threshold notices, and the positions of background work."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from charging.models.balances import Bucket, MoneyBalance, NodeLimit
from charging.models.fields import MoneyField
from charging.units import Service, Zone
from portal.models import Line


class UsageEvent(models.Model):
    """A usage record from the network, kept whatever its fate so it can be audited or replayed."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        CHARGED = "charged", "Charged"
        REJECTED = "rejected", "Rejected"

    source = models.CharField(max_length=50, default="mediation")
    external_id = models.CharField(max_length=100)
    msisdn = models.CharField(max_length=20, blank=True)
    # Indexed with the time it happened (Meta.indexes): pages read a line's usage newest first.
    # No foreign-key constraint in the database: its check at commit locks the line's row for
    # every record stored (a write to the line table per record, about a third of what storing
    # a batch costs the server). The line is the one its number resolved to as the record was
    # stored, and lines are never deleted while they have usage: PROTECT still refuses that.
    line = models.ForeignKey(
        Line,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="usage_events",
        db_index=False,
        db_constraint=False,
    )
    service = models.CharField(max_length=16, blank=True)
    zone = models.CharField(max_length=16, choices=Zone.choices, default=Zone.HOME)
    unit = models.CharField(max_length=16, blank=True)
    quantity = models.BigIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict, help_text="The record as received.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    reason = models.TextField(blank=True, help_text="Why a record was rejected.")
    errors = models.JSONField(default=dict, blank=True, help_text="The rejection reason per field.")
    units_from_buckets = models.BigIntegerField(default=0)
    amount_charged = MoneyField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    charged_at = models.DateTimeField(null=True, blank=True)
    ledger_reference = models.CharField(
        max_length=200,
        blank=True,
        help_text="The ledger entries that carry this charge: a batch posts one per balance and day.",
    )

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="usage_event_once_per_source"),
        ]
        indexes = [
            # A line's usage by when it happened: its latest records and its hours, without a
            # scan of everyone's (it replaces one by arrival, so storing costs no more).
            models.Index(fields=["line", "-occurred_at"], name="usage_event_line_occurred"),
            # The records turned away (they alone carry a reason), newest first. Nothing a charge
            # writes is indexed, ``status`` included: marking a record charged rewrites it on
            # its own page (a "HOT" update; the table leaves room for it, migration 0010)
            # instead of adding its new version to every index.
            models.Index(fields=["-received_at"], condition=~models.Q(reason=""), name="usage_event_rejected"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class UsageEventReplay(models.Model):
    """An agent's replay of a rejected usage record: who asked, why, and what came of it."""

    event = models.ForeignKey(UsageEvent, on_delete=models.PROTECT, related_name="replays")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    replayed_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=200, blank=True)
    outcome = models.TextField(help_text="'accepted' (queued to be charged), or why it was rejected again.")

    class Meta:
        ordering = ["-replayed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event} replayed by {self.actor}"


class ChargingSession(models.Model):
    """An online charging session (Diameter credit control style): reserve, report, end."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        TERMINATED = "terminated", "Terminated"
        EXPIRED = "expired", "Expired"

    source = models.CharField(max_length=50, default="network", help_text="The network element's id space.")
    session_id = models.CharField(max_length=100)
    # Indexed with the time it opened (Meta.indexes): a line's sessions are read newest first.
    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="charging_sessions", db_index=False)
    service = models.CharField(max_length=16, choices=Service.choices)
    zone = models.CharField(max_length=16, choices=Zone.choices, default=Zone.HOME)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    request_number = models.PositiveIntegerField(default=0, help_text="The last request answered.")
    used_units = models.BigIntegerField(default=0)
    amount_charged = MoneyField(default=0)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["line", "-opened_at"])]
        constraints = [
            models.UniqueConstraint(fields=["source", "session_id"], name="charging_session_once_per_source")
        ]

    def __str__(self) -> str:
        return self.session_id


class Reservation(models.Model):
    """Units granted to a session and held until it reports usage or the grant expires."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SETTLED = "settled", "Settled"
        EXPIRED = "expired", "Expired"

    session = models.ForeignKey(ChargingSession, on_delete=models.PROTECT, related_name="reservations")
    units = models.BigIntegerField()
    granted_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    throttled = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["status", "expires_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["session"], condition=models.Q(status="open"), name="one_open_reservation_per_session"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.units} for {self.session_id}"


class ReservationHold(models.Model):
    """What one reservation holds on one balance or limit, in the order it is drawn from."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="holds")
    position = models.PositiveSmallIntegerField()
    bucket = models.ForeignKey(Bucket, on_delete=models.PROTECT, null=True, blank=True)
    money_balance = models.ForeignKey(MoneyBalance, on_delete=models.PROTECT, null=True, blank=True)
    limit = models.ForeignKey(NodeLimit, on_delete=models.PROTECT, null=True, blank=True)
    units = models.BigIntegerField()
    amount = MoneyField(default=0, help_text="Money held, for a money hold.")
    price_key = models.CharField(max_length=16, blank=True, help_text="'tariff' or 'overage' for a money hold.")

    class Meta:
        ordering = ["reservation_id", "position"]

    def __str__(self) -> str:
        return f"hold {self.units} of {self.reservation_id}"


class ChargingRequest(models.Model):
    """The answer given to one online request, kept so a repeat gets the same answer."""

    key = models.CharField(
        max_length=200, unique=True, help_text="source:session id#request number, or event:source:id."
    )
    kind = models.CharField(max_length=16)
    answer = models.JSONField()
    status_code = models.PositiveSmallIntegerField(default=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class ThresholdNotice(models.Model):
    """A bucket or a limit crossed a percentage of its size: sent once per period."""

    bucket = models.ForeignKey(Bucket, on_delete=models.CASCADE, null=True, blank=True, related_name="notices")
    limit = models.ForeignKey(NodeLimit, on_delete=models.CASCADE, null=True, blank=True, related_name="notices")
    percent = models.PositiveSmallIntegerField()
    period_start = models.DateTimeField()
    used = models.BigIntegerField()
    of = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "percent", "period_start"],
                condition=models.Q(bucket__isnull=False),
                name="bucket_threshold_once_per_period",
            ),
            models.UniqueConstraint(
                fields=["limit", "percent", "period_start"],
                condition=models.Q(limit__isnull=False),
                name="limit_threshold_once_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.percent}% of {self.bucket or self.limit}"


class QuotaLogPosition(models.Model):
    """How far the online quota store's log (``charging.quota``) has been applied to the
    database, written in the same transaction as what it applied: each entry is applied once."""

    name = models.CharField(max_length=50, unique=True)
    last_id = models.CharField(max_length=40, default="0-0")

    def __str__(self) -> str:
        return f"{self.name} at {self.last_id}"


class UsageChargeSweep(models.Model):
    """How far the sweep for usage records left uncharged has got: every record with a smaller
    key is charged or rejected (``charging.offline.usage_events_requeue``)."""

    name = models.CharField(max_length=50, unique=True)
    below_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} below {self.below_id}"


class UsageQueueBacklog(models.Model):
    """Stored usage records whose charging task could not be queued (the broker was away):
    queued again as soon as it answers (``charging.offline.usage_backlog_queue``)."""

    event_ids = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{len(self.event_ids)} records waiting since {self.created_at:%H:%M:%S}"


class QuotaLogSetAside(models.Model):
    """A quota-store log entry the database could not apply (it no longer agrees with the
    store, as after Redis lost writes in a crash): kept with the error, so the log goes on
    (``manage.py quota_store recover`` and the README's runbook)."""

    entry_id = models.CharField(max_length=40, unique=True)
    entry = models.JSONField()
    error = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"log entry {self.entry_id}: {self.error[:60]}"
