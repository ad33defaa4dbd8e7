"""Network credentials: the keys network elements and mediation systems present to the
network API (usage records, online sessions, single events, refunds)."""

from datetime import datetime

from django.db import models
from django.utils import timezone


class NetworkCredential(models.Model):
    """One key of one source, scoped to the endpoints that source needs.

    The source is the id space of the requests the key sends (usage records, sessions and
    events are unique per source). Only a hash of the key's secret is kept: the key is shown
    once, when it is issued. A source rotates its key by getting a new one issued and the old
    one revoked once it has switched.
    """

    class Scope(models.TextChoices):
        USAGE = "usage", "Usage records"
        SESSIONS = "sessions", "Online sessions"
        EVENTS = "events", "Single events"
        REFUNDS = "refunds", "Refunds of single events"

    source = models.CharField(max_length=50, help_text="The network element or mediation system.")
    key_id = models.CharField(max_length=16, unique=True, help_text="The key's public part, to find it by.")
    secret_hash = models.CharField(max_length=64, help_text="SHA-256 of the key's secret part (hex).")
    scopes = models.JSONField(default=list, help_text="The endpoints the key opens.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="None: until revoked.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["source", "-created_at"]
        indexes = [models.Index(fields=["source", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.source} key {self.key_id}"

    def is_usable(self, at: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes
