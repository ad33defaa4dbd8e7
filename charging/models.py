"""Balances, the ledger and usage events.

Quantities are integers in their smallest unit (bytes, seconds, messages); money is a Decimal
with the ledger's fixed scale. A balance changes only together with a ledger row that says
what, why, by whom and when, so every balance equals the sum of its ledger.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from charging.units import Service, Unit
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
    """An allowance of units a line draws from before money."""

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="buckets")
    definition = models.ForeignKey(BucketDefinition, on_delete=models.PROTECT, null=True, blank=True)
    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=16, choices=Unit.choices)
    initial = models.PositiveBigIntegerField()
    remaining = models.BigIntegerField()
    priority = models.PositiveSmallIntegerField(default=100)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line_id", "priority", "valid_until", "pk"]
        indexes = [models.Index(fields=["line", "unit"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(remaining__gte=0), name="bucket_remaining_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.line_id}"

    def is_valid_at(self, at) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    @property
    def used(self) -> int:
        return self.initial - self.remaining


class MoneyBalance(models.Model):
    """Money of a billing account: prepaid funds, or what a postpaid account owes (negative).

    What may be spent is ``amount + billing_account.credit_limit``.
    """

    billing_account = models.OneToOneField(BillingAccount, on_delete=models.PROTECT, related_name="money_balance")
    amount = MoneyField(default=0)

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
    line = models.ForeignKey(Line, on_delete=models.PROTECT, null=True, blank=True, related_name="usage_events")
    service = models.CharField(max_length=16, blank=True)
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

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="usage_event_once_per_source"),
        ]
        indexes = [models.Index(fields=["line", "-received_at"]), models.Index(fields=["status"])]

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

    billing_account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="ledger_entries")
    bucket = models.ForeignKey(Bucket, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger")
    money_balance = models.ForeignKey(
        MoneyBalance, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    units = models.BigIntegerField(default=0, help_text="Change of the bucket, in its unit.")
    amount = MoneyField(default=0, help_text="Change of the money balance.")
    usage_event = models.ForeignKey(UsageEvent, on_delete=models.PROTECT, null=True, blank=True)
    reference = models.CharField(max_length=100, blank=True, help_text="Order, payment or session id.")
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
