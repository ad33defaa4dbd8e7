"""Balances and the ledger: allowances (buckets), money, the cost centres' limits.

A balance changes only together with a ledger row that says what, why, by whom and when, so
every balance equals the sum of its ledger (``charging.ledger``).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from charging.models.fields import MoneyField
from charging.models.tariffs import BucketDefinition
from charging.units import Unit
from enterprise.models import CostCentre
from portal.models import BillingAccount, Line


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
        TERMS = "terms", "Allowance terms changed"

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
    usage_event = models.ForeignKey("charging.UsageEvent", on_delete=models.PROTECT, null=True, blank=True)
    reference = models.CharField(max_length=200, blank=True, help_text="Order, payment, session or event id.")
    reason = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    terms = models.JSONField(
        null=True,
        blank=True,
        help_text="An allowance's grant and every later change of what it is: its unit, holder, validity "
        "and priority from this entry on (``charging.ledger.bucket_terms``).",
    )

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
