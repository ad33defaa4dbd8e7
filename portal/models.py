"""Customer accounts: the base every other app points at.

A customer (a person or a company) has billing accounts; a billing account has lines (a SIM
or device with an MSISDN). The Django user who owns a customer is the one who sees it.
"""

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from portal.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class Customer(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        COMPANY = "company", "Company"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
        help_text="The login that owns this customer and sees its accounts.",
    )
    time_zone = models.CharField(max_length=64, default="Europe/Amsterdam")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["email"])]

    def __str__(self) -> str:
        return self.name


class ContactPreferences(models.Model):
    """Kept once per customer and used by every notification."""

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        SMS = "sms", "SMS"
        WEB = "web", "Web only"

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="preferences")
    preferred_channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    notification_email = models.EmailField(blank=True)
    notification_msisdn = models.CharField(max_length=20, blank=True)
    language = models.CharField(max_length=8, default="en")
    marketing_opt_in = models.BooleanField(default=False)
    usage_alerts = models.BooleanField(default=True, help_text="Tell me when an allowance runs low.")

    class Meta:
        verbose_name_plural = "contact preferences"

    def __str__(self) -> str:
        return f"Preferences of {self.customer}"


class BillingAccount(models.Model):
    class Kind(models.TextChoices):
        PREPAID = "prepaid", "Prepaid"
        POSTPAID = "postpaid", "Postpaid"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="billing_accounts")
    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PREPAID)
    currency = models.CharField(max_length=3, default="EUR")
    credit_limit = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        default=Decimal("0"),
        help_text="Postpaid: how far the money balance may go below zero.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(condition=models.Q(credit_limit__gte=0), name="credit_limit_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.get_kind_display()})"


class LineQuerySet(models.QuerySet):
    def with_held(self) -> "LineQuerySet":
        """Each line with ``held``, whether any hold stands on it, read by the same query: the
        engine's way, as nearly every line it charges is held by nothing."""
        return self.annotate(held=models.Exists(LineHold.objects.standing().filter(line=models.OuterRef("pk"))))

    def with_standing_holds(self) -> "LineQuerySet":
        """Each line with its standing holds, read in one more query for all of them."""
        standing = models.Prefetch("holds", queryset=LineHold.objects.standing(), to_attr="standing_holds")
        return self.prefetch_related(standing)

    def active(self) -> "LineQuerySet":
        """Lines no hold stands on."""
        return self.exclude(models.Exists(LineHold.objects.standing().filter(line=models.OuterRef("pk"))))


class Line(models.Model):
    """A subscription line: a SIM or device, known to the network by its MSISDN. What stops it
    being used is the set of holds standing on it (``LineHold``)."""

    billing_account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="lines")
    msisdn = models.CharField("MSISDN", max_length=20, unique=True)
    device_label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LineQuerySet.as_manager()

    class Meta:
        ordering = ["msisdn"]

    def __str__(self) -> str:
        return f"{self.msisdn} {self.device_label}".strip()

    @property
    def is_active(self) -> bool:
        """No hold stands on the line."""
        return not self.standing_hold_causes()

    def standing_hold_causes(self) -> list[str]:
        """The causes of the holds standing on the line, in a fixed order. No query when the
        line was read ``with_standing_holds()``, or ``with_held()`` and is held by nothing."""
        if hasattr(self, "standing_holds"):
            return sorted(hold.cause for hold in self.standing_holds)
        if getattr(self, "held", None) is False:
            return []
        return list(self.holds.standing().order_by("cause").values_list("cause", flat=True))

    def holds_display(self) -> str:
        """The line's state as people read it: active, terminated or what holds it."""
        causes = self.standing_hold_causes()
        if not causes:
            return "Active"
        if LineHold.Cause.TERMINATED in causes:
            return "Terminated"
        return f"On hold: {LineHold.causes_display(causes)}"


class LineHoldQuerySet(models.QuerySet):
    def standing(self) -> "LineHoldQuerySet":
        return self.filter(lifted_at__isnull=True)

    def causes_by_line(self) -> dict[int, list[str]]:
        """The holds' causes by line id, each line's in a fixed order."""
        causes: dict[int, list[str]] = defaultdict(list)
        for line_id, cause in self.order_by("line_id", "cause").values_list("line_id", "cause"):
            causes[line_id].append(cause)
        return causes


class LineHold(models.Model):
    """Something that stops a line being used, with its cause and who placed it. Only the same
    cause lifts it (``portal.services.line_hold_lift``); a terminated line stays terminated."""

    class Cause(models.TextChoices):
        LOST_OR_STOLEN = "lost_or_stolen", "Lost or stolen"
        NON_PAYMENT = "non_payment", "Non-payment"
        AGENT_BAR = "agent_bar", "Agent bar"
        COMPANY_BAR = "company_bar", "Company bar"
        TERMINATED = "terminated", "Terminated"

    line = models.ForeignKey(Line, on_delete=models.CASCADE, related_name="holds")
    cause = models.CharField(max_length=16, choices=Cause.choices)
    reason = models.CharField(max_length=200)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    placed_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the hold stands.")
    lifted_reason = models.CharField(max_length=200, blank=True)

    objects = LineHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["line", "cause"],
                condition=models.Q(lifted_at__isnull=True),
                name="one_standing_hold_per_line_and_cause",
            ),
            models.CheckConstraint(
                condition=~models.Q(cause="terminated") | models.Q(lifted_at__isnull=True),
                name="terminated_hold_never_lifted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_cause_display()} on {self.line_id}"

    @property
    def is_standing(self) -> bool:
        return self.lifted_at is None

    @classmethod
    def causes_display(cls, causes: Iterable[str]) -> str:
        """e.g. ``lost or stolen, non-payment``."""
        return ", ".join(cls.Cause(cause).label.lower() for cause in causes)

    @classmethod
    def causes_barring(cls, causes: Iterable[str], *, service: str) -> list[str]:
        """The causes among ``causes`` that bar ``service``: all, except that a non-payment hold
        lets the services in ``ACCOUNTS_NON_PAYMENT_ALLOWED_SERVICES`` through (none by default).
        Usage carries its service but not the number called, so free numbers such as customer
        care can only be left open as a whole service."""
        allowed = getattr(settings, "ACCOUNTS_NON_PAYMENT_ALLOWED_SERVICES", ())
        return [cause for cause in causes if not (cause == cls.Cause.NON_PAYMENT and service in allowed)]


class Notification(models.Model):
    """A message to a customer, sent by the channel they chose and kept as a touch-point."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        help_text="A manager told about their cost centre, when not the customer's own login.",
    )
    channel = models.CharField(max_length=8, choices=ContactPreferences.Channel.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    kind = models.CharField(max_length=32, help_text="e.g. threshold")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.subject


class AuditEntry(models.Model):
    """One change a person (or the system, with no actor) made to what a customer can use or
    see: written by the service that made it, in the same transaction, and never changed."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=64, help_text="e.g. money.adjust, line_hold.place")
    target_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    target_id = models.CharField(max_length=64)
    target = GenericForeignKey("target_type", "target_id")
    target_label = models.CharField(max_length=200, help_text="What the target was called at the time.")
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    reason = models.TextField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.target_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("an audit entry is never changed")
        super().save(*args, **kwargs)
