"""Carts (TMF663) and orders (TMF622) with their items, events and fulfilment steps."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from catalog import pricing
from catalog.models.offerings import Channel, ProductOffering, Promotion, Voucher
from charging.models import MoneyField
from portal.models import BillingAccount, Customer, Line


class ShoppingCart(models.Model):
    """One open cart per customer, the same whichever channel works on it."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ORDERED = "ordered", "Ordered"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="carts")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    started_channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.WEB)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(status="open"), name="one_open_cart_per_customer"),
        ]

    def __str__(self) -> str:
        return f"Cart {self.pk} of {self.customer}"


class CartItem(models.Model):
    cart = models.ForeignKey(ShoppingCart, on_delete=models.CASCADE, related_name="items")
    offering = models.ForeignKey(ProductOffering, on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
        help_text="The plan an add-on is bought for, or the handset an accessory goes with.",
    )
    line = models.ForeignKey(
        Line, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="Add-ons for a line."
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return str(self.offering)


class ProductOrder(models.Model):
    """A customer's order (TMF622), whichever channel placed it."""

    class State(models.TextChoices):
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        IN_PROGRESS = "inProgress", "In progress"
        COMPLETED = "completed", "Completed"
        PARTIAL = "partial", "Partially completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATES = (State.ACKNOWLEDGED, State.IN_PROGRESS)

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    billing_account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="orders")
    cart = models.OneToOneField(ShoppingCart, on_delete=models.PROTECT, null=True, blank=True, related_name="order")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who pressed 'place order': the customer, or the agent acting for them.",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACKNOWLEDGED)
    state_reason = models.TextField(blank=True)
    voucher = models.ForeignKey(Voucher, on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    due_today = MoneyField(default=0)
    monthly = MoneyField(default=0, help_text="First period's recurring charges, after promotions.")
    term_total = MoneyField(default=0, help_text="Everything over the longest contract term, after promotions.")
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-created_at"]), models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"Order {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class OrderEvent(models.Model):
    """What happened to an order and who did it: placed, cancelled, a step retried by an agent."""

    order = models.ForeignKey(ProductOrder, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    text = models.CharField(max_length=255)

    class Meta:
        ordering = ["order", "created_at", "pk"]

    def __str__(self) -> str:
        return self.text


class OrderItem(models.Model):
    class State(models.TextChoices):
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        IN_PROGRESS = "inProgress", "In progress"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (State.COMPLETED, State.FAILED, State.CANCELLED)

    order = models.ForeignKey(ProductOrder, on_delete=models.CASCADE, related_name="items")
    offering = models.ForeignKey(ProductOffering, on_delete=models.PROTECT, related_name="+")
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    line = models.ForeignKey(Line, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACKNOWLEDGED)
    state_reason = models.TextField(blank=True)
    # Prices as sold: later catalog changes do not reach an order.
    one_off_price = MoneyField(default=0)
    recurring_price = MoneyField(default=0)
    contract_months = models.PositiveSmallIntegerField(default=0)
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    promotion_phases = models.JSONField(default=list, blank=True, help_text="The promotion's phases as sold.")

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self) -> str:
        return f"{self.offering} (order {self.order_id})"

    @property
    def promotion_label(self) -> str:
        """The promotion as sold, e.g. "Summer deal: free for 6 months"."""
        if self.promotion is None:
            return ""
        phases = pricing.phases_from_json(self.promotion_phases)
        return f"{self.promotion.name}: " + ", then ".join(phase.describe() for phase in phases)


class FulfilmentStep(models.Model):
    """One back-end step of an order item, run by a Celery task, in sequence per item."""

    class Kind(models.TextChoices):
        PROVISION = "provision", "Provision the line with the network"
        ACTIVATE = "activate", "Activate in charging"
        DELIVER = "deliver", "Deliver content"
        SHIP = "ship", "Ship"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        COMPENSATED = "compensated", "Undone"
        CANCELLED = "cancelled", "Cancelled"

    # Once one of these is done the order can no longer be cancelled: the parcel has left, or
    # the service is live and billed.
    POINT_OF_NO_RETURN = (Kind.ACTIVATE, Kind.SHIP)

    order = models.ForeignKey(ProductOrder, on_delete=models.CASCADE, related_name="steps")
    item = models.ForeignKey(OrderItem, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sequence = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    round = models.PositiveSmallIntegerField(default=1, help_text="Raised when an agent retries the step.")
    partner_reference = models.CharField(max_length=100, blank=True, help_text="MSISDN, tracking number, ...")
    last_error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "item", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["item", "kind"], name="one_step_of_a_kind_per_item"),
            models.UniqueConstraint(fields=["item", "sequence"], name="step_sequence_unique_per_item"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.item})"

    @property
    def idempotency_key(self) -> str:
        """What the partner sees: the same for a re-delivered task, new when an agent retries."""
        return f"step-{self.pk}-r{self.round}"
