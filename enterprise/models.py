"""Companies and their cost-centre tree (django-mptt).

The tree runs company root -> divisions -> departments -> teams -> device nodes; a device node
points at one line. Pools and limits hang off these nodes (see the charging app).
"""

from django.conf import settings
from django.db import models
from mptt.models import MPTTModel, TreeForeignKey

from portal.models import Customer, Line


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
