"""What is sold (TMF620 product offerings), its promotions in phases, and vouchers."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from charging.models import BucketDefinition, MoneyField, RatePlan


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
