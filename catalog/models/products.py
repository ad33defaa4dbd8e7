"""The installed base (TMF637 products): what a customer has, its history and recurring charges."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from catalog.models.offerings import ProductOffering, Promotion
from catalog.models.orders import OrderItem
from charging.models import LedgerEntry, MoneyField
from portal.models import BillingAccount, Customer, Line


class Product(models.Model):
    """What a customer has (TMF637): a plan, an add-on or a device, from the order that sold it."""

    class Status(models.TextChoices):
        PENDING_ACTIVE = "pendingActive", "Pending activation"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        TERMINATED = "terminated", "Terminated"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="products")
    billing_account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="products")
    offering = models.ForeignKey(ProductOffering, on_delete=models.PROTECT, related_name="products")
    order_item = models.OneToOneField(
        OrderItem, on_delete=models.PROTECT, null=True, blank=True, related_name="product"
    )
    line = models.ForeignKey(Line, on_delete=models.PROTECT, null=True, blank=True, related_name="products")
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="addons")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING_ACTIVE)
    recurring_price = MoneyField(default=0)
    contract_months = models.PositiveSmallIntegerField(default=0)
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    promotion_phases = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    contract_ends_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return f"{self.offering} ({self.get_status_display()})"


class ProductEvent(models.Model):
    """What happened to a product and who did it: changed, suspended, resumed, terminated."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    text = models.CharField(max_length=255)

    class Meta:
        ordering = ["product", "created_at", "pk"]

    def __str__(self) -> str:
        return self.text


class RecurringCharge(models.Model):
    """A product's charge for one billing period: posted once, however often the task runs."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="recurring_charges")
    period_start = models.DateField(help_text="First day of the period, in the account's time zone.")
    period_index = models.PositiveIntegerField(help_text="0 for the period the product started in.")
    base_amount = MoneyField(help_text="The recurring price for the days charged, before promotions.")
    amount = MoneyField(help_text="What was charged, after promotions and proration.")
    description = models.CharField(max_length=255)
    ledger_entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="recurring_charge"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "period_start"]
        constraints = [
            models.UniqueConstraint(fields=["product", "period_start"], name="one_recurring_charge_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.period_start}"
