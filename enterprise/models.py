"""Companies and their cost-centre tree (django-mptt).

The tree runs company root -> divisions -> departments -> teams -> device nodes; a device node
points at one line. Pools and limits hang off these nodes (see the charging app).
"""

from django.conf import settings
from django.db import models
from mptt.models import MPTTModel, TreeForeignKey

from portal.models import BillingAccount, Customer, Line


class Company(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="company")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name


class CostCentre(MPTTModel):
    class Kind(models.TextChoices):
        COMPANY = "company", "Company"
        DIVISION = "division", "Division"
        DEPARTMENT = "department", "Department"
        TEAM = "team", "Team"
        DEVICE = "device", "Device"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="cost_centres")
    parent = TreeForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    line = models.OneToOneField(Line, on_delete=models.PROTECT, null=True, blank=True, related_name="cost_centre")
    personal_account = models.ForeignKey(
        BillingAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Device nodes: the user's own account, for usage steered or pushed off the company.",
    )

    class MPTTMeta:
        order_insertion_by = ["name"]

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="device", line__isnull=False) | ~models.Q(kind="device"),
                name="device_node_has_line",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ManagerAssignment(models.Model):
    """A telecom manager (or a sub-manager) sees and changes the subtree below ``node``."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="managed_nodes")
    node = models.ForeignKey(CostCentre, on_delete=models.CASCADE, related_name="managers")
    delegated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "node"], name="one_assignment_per_user_node")]

    def __str__(self) -> str:
        return f"{self.user} manages {self.node}"


class SteeringRule(models.Model):
    """Bring your own device: who pays for a usage of a company's line. The engine takes the
    first rule (by priority) whose conditions all match; with none, the company pays."""

    class Payer(models.TextChoices):
        CORPORATE = "corporate", "Company"
        PERSONAL = "personal", "User's personal account"

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="steering_rules")
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower is tried first.")
    name = models.CharField(max_length=100)
    service = models.CharField(max_length=16, blank=True, help_text="Empty: any service.")
    zone = models.CharField(max_length=16, blank=True, help_text="Empty: any zone.")
    time_from = models.TimeField(null=True, blank=True, help_text="Local time; empty: any time.")
    time_to = models.TimeField(null=True, blank=True)
    weekdays = models.JSONField(default=list, blank=True, help_text="0 = Monday; empty: every day.")
    payer = models.CharField(max_length=16, choices=Payer.choices)

    class Meta:
        ordering = ["company_id", "priority", "pk"]

    def __str__(self) -> str:
        return self.name
