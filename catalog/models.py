"""The catalog, carts, orders with their fulfilment steps, and the installed base.

Vocabulary follows TM Forum: a product offering is what is sold (TMF620), a shopping cart
collects it (TMF663), a product order buys it (TMF622) and a product is what a customer then
has (TMF637). Prices are Decimals at the ledger's scale; charging owns tariffs and allowances,
and an offering refers to them.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from catalog import pricing
from charging.models import BucketDefinition, LedgerEntry, MoneyField, RatePlan
from portal.models import BillingAccount, Customer, Line


class Segment(models.TextChoices):
    CONSUMER = "consumer", "Consumer"
    ENTERPRISE = "enterprise", "Enterprise"


class Channel(models.TextChoices):
    WEB = "web", "Web (self-service)"
    ASSISTED = "assisted", "Call centre (assisted sale)"


class OfferingQuerySet(models.QuerySet):
    def available(self, *, at=None) -> "OfferingQuerySet":
        """Offerings inside their validity window."""
        at = at or timezone.now()
        return self.filter(valid_from__lte=at).filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))

    def sold_in(self, *, segment: str, channel: str) -> "OfferingQuerySet":
        channel_filter = Q(sold_on_web=True) if channel == Channel.WEB else Q(sold_assisted=True)
        return self.filter(channel_filter).filter(Q(segment="") | Q(segment=segment))


class ProductOffering(models.Model):
    class Kind(models.TextChoices):
        PLAN = "plan", "Plan"
        ADDON = "addon", "Add-on"
        HANDSET = "handset", "Handset"
        ACCESSORY = "accessory", "Accessory"
        BUNDLE = "bundle", "Bundle"

    class ContractState(models.TextChoices):
        ANY = "any", "Anyone"
        NO_CONTRACT = "no_contract", "Customers without a plan in contract"
        IN_CONTRACT = "in_contract", "Customers with a plan in contract"
        CONTRACT_ENDING = "contract_ending", "Customers whose contract ends within the early-upgrade window"

    class Shipping(models.TextChoices):
        NONE = "", "Not shipped"
        DISTRIBUTOR = "distributor", "From the distributor's warehouse"
        DROP_SHIP = "drop_ship", "Drop-shipped by the maker"

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=150)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.TextField(blank=True)

    one_off_price = MoneyField(default=0, help_text="Charged once, when the item is activated or shipped.")
    recurring_price = MoneyField(default=0, help_text="Charged every monthly billing period.")
    rate_plan = models.ForeignKey(
        RatePlan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="offerings",
        help_text="Plans: the charging rate plan whose tariffs price usage beyond the allowances.",
    )
    allowances = models.ManyToManyField(
        BucketDefinition, blank=True, related_name="offerings", help_text="Allowances granted on activation."
    )
    contract_months = models.PositiveSmallIntegerField(default=0, help_text="0: no minimum term.")
    early_upgrade_months = models.PositiveSmallIntegerField(
        default=3, help_text="In the last months of the term, a change to a dearer plan costs no termination fee."
    )
    termination_fee_percent = models.PositiveSmallIntegerField(
        default=50, help_text="Early termination fee: this share of the recurring charges left in the term."
    )
    content_sku = models.CharField(
        max_length=50, blank=True, help_text="Add-ons with digital content: what the content partner delivers."
    )
    shipping = models.CharField(max_length=16, choices=Shipping.choices, blank=True, default=Shipping.NONE)

    segment = models.CharField(max_length=16, choices=Segment.choices, blank=True, help_text="Empty: every segment.")
    sold_on_web = models.BooleanField(default=True)
    sold_assisted = models.BooleanField(default=True, help_text="Sold by call-centre agents.")
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)

    # Eligibility: who may buy it.
    contract_state = models.CharField(max_length=16, choices=ContractState.choices, default=ContractState.ANY)
    requires_plans = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="+",
        limit_choices_to={"kind": "plan"},
        help_text="Only for customers who already have one of these plans.",
    )
    # Compatibility: what goes with what.
    compatible_plans = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="compatible_handsets",
        limit_choices_to={"kind": "plan"},
        help_text="Handsets: the plans it can be sold with.",
    )
    fits_handsets = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="accessories",
        limit_choices_to={"kind": "handset"},
        help_text="Accessories: the handsets it fits.",
    )
    allowed_addons = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="allowed_on_plans",
        limit_choices_to={"kind": "addon"},
        help_text="Plans: the add-ons that may be bought on top.",
    )

    components = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="in_bundles",
        limit_choices_to={"kind__in": ["plan", "handset", "accessory"]},
        help_text="Bundles: what it is made of. The bundle carries the price; each part is fulfilled.",
    )

    objects = OfferingQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name", "pk"]
        indexes = [models.Index(fields=["kind", "valid_from"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(one_off_price__gte=0) & Q(recurring_price__gte=0), name="offering_prices_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="offering_validity_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_plan(self) -> bool:
        return self.kind == self.Kind.PLAN


class Promotion(models.Model):
    """A price change in phases, e.g. six months free then the normal rate.

    Applies to the recurring price of the offerings it names. Without a voucher it applies to
    every order that meets its conditions; with ``requires_voucher`` only to carts with a voucher.
    """

    name = models.CharField(max_length=150)
    offerings = models.ManyToManyField(ProductOffering, related_name="promotions")
    segment = models.CharField(max_length=16, choices=Segment.choices, blank=True, help_text="Empty: every segment.")
    min_contract_months = models.PositiveSmallIntegerField(default=0)
    requires_voucher = models.BooleanField(default=False)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class PromotionPhase(models.Model):
    class Kind(models.TextChoices):
        FREE = "free", "Free"
        PERCENT = "percent", "Percentage off"
        FIXED = "fixed", "Fixed amount off"

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="phases")
    sequence = models.PositiveSmallIntegerField()
    periods = models.PositiveSmallIntegerField(help_text="How many monthly periods this phase lasts.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = MoneyField(default=0, help_text="Percent (0-100) or an amount off, by kind.")

    class Meta:
        ordering = ["promotion", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["promotion", "sequence"], name="promotion_phase_sequence_unique"),
            models.CheckConstraint(condition=Q(periods__gt=0), name="promotion_phase_lasts"),
            models.CheckConstraint(
                condition=Q(value__gte=0) & (~Q(kind="percent") | Q(value__lte=100)),
                name="promotion_phase_value_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.promotion}: phase {self.sequence}"


class Voucher(models.Model):
    code = models.CharField(max_length=40, unique=True)
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="vouchers")
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no total limit.")
    once_per_customer = models.BooleanField(default=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_uses__isnull=True) | Q(uses__lte=F("max_uses")), name="voucher_uses_within_limit"
            ),
        ]

    def __str__(self) -> str:
        return self.code


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
