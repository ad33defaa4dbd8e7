"""Balances, the ledger and usage events.

Quantities are integers in their smallest unit (bytes, seconds, messages); money is a Decimal
with the ledger's fixed scale. A balance changes only together with a ledger row that says
what, why, by whom and when, so every balance equals the sum of its ledger.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from charging.units import Service, Unit, Zone
from enterprise.models import CostCentre
from portal.models import BillingAccount, Line
from portal.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class MoneyField(models.DecimalField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)


class RatePlan(models.Model):
    """A set of tariffs a line is rated with; the catalog's plans refer to one."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LineRatePlan(models.Model):
    """Which rate plan a line is on; a line without one is rated with the default tariffs."""

    line = models.OneToOneField(Line, on_delete=models.CASCADE, related_name="rate_plan_assignment")
    rate_plan = models.ForeignKey(RatePlan, on_delete=models.PROTECT, related_name="line_assignments")
    assigned_at = models.DateTimeField(default=timezone.now)
    reference = models.CharField(max_length=100, blank=True, help_text="The order that assigned it.")

    def __str__(self) -> str:
        return f"{self.line} on {self.rate_plan}"


class Tariff(models.Model):
    """What a service costs out of money once the allowances are used up."""

    rate_plan = models.ForeignKey(
        RatePlan,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tariffs",
        help_text="Empty: an operator default, used for lines whose plan has no tariff for the service.",
    )
    name = models.CharField(max_length=100)
    service = models.CharField(max_length=16, choices=Service.choices)
    price = MoneyField(help_text="Price of one block of `per_units` units.")
    per_units = models.PositiveBigIntegerField(help_text="Units priced together, e.g. 1048576 bytes (1 MB).")
    increment = models.PositiveBigIntegerField(default=1, help_text="Usage is rounded up to a multiple of this.")
    first_increment = models.PositiveBigIntegerField(
        default=0,
        help_text="The least a session is charged for, e.g. 60 seconds for voice; 0: just the increment.",
    )
    is_default = models.BooleanField(default=False, help_text="Used for lines without a tariff of their own.")

    class Meta:
        ordering = ["service", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["service"], condition=models.Q(is_default=True), name="one_default_tariff_per_service"
            ),
            models.UniqueConstraint(
                fields=["rate_plan", "service"],
                condition=models.Q(rate_plan__isnull=False),
                name="one_tariff_per_plan_and_service",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TariffRate(models.Model):
    """A price of a tariff that applies only in a zone, a time-of-day band or a volume tier.

    Rating picks, for each piece of usage, the matching rate with the most conditions (zone,
    then band, then the highest tier reached); with none, the tariff's own price applies.
    """

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="rates")
    zone = models.CharField(max_length=16, choices=Zone.choices, blank=True, help_text="Empty: any zone.")
    band_start = models.TimeField(null=True, blank=True, help_text="Local time the band starts; empty: all day.")
    band_end = models.TimeField(null=True, blank=True, help_text="Local time the band ends (may wrap midnight).")
    tier_from = models.PositiveBigIntegerField(
        default=0, help_text="Applies once this many units were used in the billing period."
    )
    price = MoneyField(help_text="Price of one block of the tariff's `per_units` units.")

    class Meta:
        ordering = ["tariff", "zone", "band_start", "tier_from"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(band_start__isnull=True, band_end__isnull=True)
                | models.Q(band_start__isnull=False, band_end__isnull=False),
                name="tariff_rate_band_has_both_ends",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff}: {self.price}"


class BucketDefinition(models.Model):
    """A kind of allowance an offering can grant, e.g. '10 GB data, 30 days'."""

    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=16, choices=Unit.choices)
    quantity = models.PositiveBigIntegerField()
    validity_days = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: never expires.")
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower is used first.")

    class Meta:
        ordering = ["unit", "name"]

    def __str__(self) -> str:
        return self.name


class Bucket(models.Model):
    """An allowance of units drawn from before money: a line's own, or a pool held by a cost
    centre (or the company root) and shared by every line below it.

    ``reserved`` is what open charging sessions hold; it is not spent until they report usage,
    so it is no ledger movement. What a new grant may take is ``remaining - reserved``.
    """

    line = models.ForeignKey(Line, on_delete=models.PROTECT, null=True, blank=True, related_name="buckets")
    cost_centre = models.ForeignKey(
        CostCentre, on_delete=models.PROTECT, null=True, blank=True, related_name="pool_buckets"
    )
    billing_account = models.ForeignKey(
        BillingAccount, on_delete=models.PROTECT, related_name="buckets", help_text="Whose ledger it is in."
    )
    definition = models.ForeignKey(BucketDefinition, on_delete=models.PROTECT, null=True, blank=True)
    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=16, choices=Unit.choices)
    initial = models.PositiveBigIntegerField()
    remaining = models.BigIntegerField()
    reserved = models.BigIntegerField(default=0)
    in_store = models.BigIntegerField(
        default=0, help_text="Part of reserved handed in slices to the online quota store."
    )
    priority = models.PositiveSmallIntegerField(default=100)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line_id", "priority", "valid_until", "pk"]
        indexes = [models.Index(fields=["line", "unit"]), models.Index(fields=["cost_centre", "unit"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(remaining__gte=0), name="bucket_remaining_not_negative"),
            models.CheckConstraint(
                condition=models.Q(reserved__gte=0, reserved__lte=models.F("remaining")),
                name="bucket_reserved_within_remaining",
            ),
            models.CheckConstraint(
                condition=models.Q(in_store__gte=0, in_store__lte=models.F("reserved")),
                name="bucket_in_store_within_reserved",
            ),
            models.CheckConstraint(
                condition=models.Q(line__isnull=False, cost_centre__isnull=True)
                | models.Q(line__isnull=True, cost_centre__isnull=False),
                name="bucket_held_by_line_or_cost_centre",
            ),
        ]

    def __str__(self) -> str:
        holder = f"line {self.line_id}" if self.line_id else f"cost centre {self.cost_centre_id}"
        return f"{self.name} on {holder}"

    @property
    def available(self) -> int:
        return self.remaining - self.reserved

    def is_valid_at(self, at) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    @property
    def used(self) -> int:
        return self.initial - self.remaining


class MoneyBalance(models.Model):
    """Money of a billing account: prepaid funds, or what a postpaid account owes (negative).

    What may be spent is ``amount + billing_account.credit_limit - reserved``, and no more than
    what is left of the customer's own monthly ``spending_cap`` on usage, if they set one.
    """

    billing_account = models.OneToOneField(BillingAccount, on_delete=models.PROTECT, related_name="money_balance")
    amount = MoneyField(default=0)
    reserved = MoneyField(default=0, help_text="Held by open charging sessions; not yet spent.")
    spending_cap = MoneyField(null=True, blank=True, help_text="The customer's own monthly cap on usage charges.")
    period_spent = MoneyField(default=0, help_text="Usage charged this month, against the spending cap.")
    period_start = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(reserved__gte=0), name="money_reserved_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.billing_account.currency}"


class UsageEvent(models.Model):
    """A usage record from the network, kept whatever its fate so it can be audited or replayed."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        CHARGED = "charged", "Charged"
        REJECTED = "rejected", "Rejected"

    source = models.CharField(max_length=50, default="mediation")
    external_id = models.CharField(max_length=100)
    msisdn = models.CharField(max_length=20, blank=True)
    # Indexed with the time it arrived (Meta.indexes): a line's usage is always read newest first.
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
            models.Index(fields=["line", "-received_at"]),
            # The records turned away (they alone carry a reason), newest first. Nothing a charge
            # writes is indexed, ``status`` included: marking a record charged rewrites it on
            # its own page (a "HOT" update; the table leaves room for it, migration 0010)
            # instead of adding its new version to every index.
            models.Index(fields=["-received_at"], condition=~models.Q(reason=""), name="usage_event_rejected"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class LedgerEntry(models.Model):
    """One change of one balance (a bucket or a money balance). Rows are never updated."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Allowance granted"
        USAGE = "usage", "Usage charge"
        TOPUP = "topup", "Top-up"
        PAYMENT = "payment", "Payment"
        ADJUSTMENT = "adjustment", "Adjustment"
        REFUND = "refund", "Refund"
        RECURRING = "recurring", "Recurring charge"
        ONE_OFF = "one_off", "One-off charge"
        EXPIRY = "expiry", "Expiry"

    # Indexed with the time (Meta.indexes): an account's ledger is read newest first.
    billing_account = models.ForeignKey(
        BillingAccount, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False
    )
    bucket = models.ForeignKey(Bucket, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger")
    money_balance = models.ForeignKey(
        MoneyBalance, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    units = models.BigIntegerField(default=0, help_text="Change of the bucket, in its unit.")
    amount = MoneyField(default=0, help_text="Change of the money balance.")
    usage_event = models.ForeignKey(UsageEvent, on_delete=models.PROTECT, null=True, blank=True)
    reference = models.CharField(max_length=200, blank=True, help_text="Order, payment, session or event id.")
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["billing_account", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(bucket__isnull=False, money_balance__isnull=True, amount=0)
                    | models.Q(bucket__isnull=True, money_balance__isnull=False, units=0)
                ),
                name="ledger_entry_moves_exactly_one_balance",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.units or self.amount}"


class NodeLimit(models.Model):
    """A cap on how many units of one kind the lines below a cost centre use per period, and
    what happens past it. A device node's limit caps its single line."""

    class Period(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"

    class OnExceed(models.TextChoices):
        BLOCK = "block", "Block: grant nothing past the limit"
        THROTTLE = "throttle", "Throttle: go on at reduced speed"
        OVERAGE = "overage", "Allow as overage, charged to the company at the overage price"
        PERSONAL = "personal", "Charge the user's personal account"

    # Indexed by the unique (node, unit) constraint.
    node = models.ForeignKey(CostCentre, on_delete=models.CASCADE, related_name="limits", db_index=False)
    unit = models.CharField(max_length=16, choices=Unit.choices)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    limit = models.PositiveBigIntegerField()
    used = models.BigIntegerField(default=0, help_text="Units used this period (overage included).")
    reserved = models.BigIntegerField(default=0, help_text="Units held by open sessions.")
    in_store = models.BigIntegerField(
        default=0, help_text="Part of reserved handed in slices to the online quota store."
    )
    period_start = models.DateTimeField(default=timezone.now)
    on_exceed = models.CharField(max_length=16, choices=OnExceed.choices, default=OnExceed.BLOCK)
    overage_price = MoneyField(null=True, blank=True, help_text="Price of one block of `overage_per_units`.")
    overage_per_units = models.PositiveBigIntegerField(null=True, blank=True)
    thresholds = models.JSONField(default=list, blank=True, help_text="Percentages that notify; empty: 50, 80, 100.")

    class Meta:
        ordering = ["node_id", "unit"]
        constraints = [
            models.UniqueConstraint(fields=["node", "unit"], name="one_limit_per_node_and_unit"),
            models.CheckConstraint(
                condition=models.Q(used__gte=0, reserved__gte=0), name="node_limit_counters_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(in_store__gte=0, in_store__lte=models.F("reserved")),
                name="node_limit_in_store_within_reserved",
            ),
            models.CheckConstraint(
                condition=~models.Q(on_exceed="overage")
                | models.Q(overage_price__isnull=False, overage_per_units__isnull=False),
                name="overage_limit_has_a_price",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node}: {self.limit} {self.unit} per {self.period}"

    @property
    def headroom(self) -> int:
        return self.limit - self.used - self.reserved


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
