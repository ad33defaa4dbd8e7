"""What usage costs: rate plans, tariffs and their rates, and the allowances an offering grants."""

from django.db import models
from django.utils import timezone

from charging.models.fields import MoneyField
from charging.units import Service, Unit, Zone
from portal.models import Line


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
