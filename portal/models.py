"""Customer accounts: the base every other app points at.

A customer (a person or a company) has billing accounts; a billing account has lines (a SIM
or device with an MSISDN). The Django user who owns a customer is the one who sees it.
"""

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


class Line(models.Model):
    """A subscription line: a SIM or device, known to the network by its MSISDN."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        TERMINATED = "terminated", "Terminated"

    billing_account = models.ForeignKey(BillingAccount, on_delete=models.PROTECT, related_name="lines")
    msisdn = models.CharField("MSISDN", max_length=20, unique=True)
    device_label = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["msisdn"]

    def __str__(self) -> str:
        return f"{self.msisdn} {self.device_label}".strip()

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


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
