"""Notifications to customers, sent by the channel they chose and kept as touch-points.

A notification is stored first; e-mail and SMS leave only after the transaction that stored
it commits. Web notifications are only stored: the portal shows them.
"""

import logging
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from portal.models import ContactPreferences, Customer, Notification

logger = logging.getLogger(__name__)

Channel = ContactPreferences.Channel

DEFAULT_SMS_GATEWAY = "portal.notifications.LoggingSmsGateway"


class SmsGateway(Protocol):
    def send(self, *, msisdn: str, text: str) -> None:
        """Hands one text message to the network; raises if it was not accepted."""


class LoggingSmsGateway:
    """The default gateway: writes the message to the log instead of sending it."""

    def send(self, *, msisdn: str, text: str) -> None:
        logger.info("SMS to %s: %s", msisdn, text)


def sms_gateway() -> SmsGateway:
    """The gateway named by the ``PORTAL_SMS_GATEWAY`` setting (a dotted class path)."""
    return import_string(getattr(settings, "PORTAL_SMS_GATEWAY", DEFAULT_SMS_GATEWAY))()


def _preferences(customer: Customer) -> ContactPreferences | None:
    try:
        return customer.preferences
    except ContactPreferences.DoesNotExist:
        return None


def _channel(preferences: ContactPreferences | None, user) -> str:
    if preferences is None or not preferences.usage_alerts:
        return Channel.WEB
    if user is not None and preferences.preferred_channel == Channel.SMS:
        return Channel.EMAIL  # a manager's login has no phone number of its own
    return preferences.preferred_channel


@transaction.atomic
def notification_send(*, customer: Customer, subject: str, body: str, kind: str, user=None) -> Notification:
    """Stores a notification to ``customer`` (or to ``user``, a manager of its cost centres)
    and delivers it by the customer's preferred channel once the transaction commits.

    No preferences, or usage alerts turned off: stored for the portal only (channel web).
    """
    channel = _channel(_preferences(customer), user)
    notification = Notification.objects.create(
        customer=customer, user=user, channel=channel, subject=subject[:200], body=body, kind=kind
    )
    if channel == Channel.WEB:
        Notification.objects.filter(pk=notification.pk).update(status=Notification.Status.SENT, sent_at=timezone.now())
        notification.refresh_from_db()
    else:
        transaction.on_commit(lambda: notification_deliver(notification_id=notification.pk))
    return notification


class NoAddress(Exception):
    """The chosen channel has no address to send to."""


def notification_deliver(*, notification_id: int) -> None:
    """Sends a pending e-mail or SMS notification and records whether it went out.

    Runs after commit, outside any transaction; a notification no longer pending is left alone.
    """
    notification = (
        Notification.objects.select_related("customer__preferences", "user")
        .filter(pk=notification_id, status=Notification.Status.PENDING)
        .first()
    )
    if notification is None:
        return
    try:
        _deliver(notification)
    except NoAddress as missing:
        # The customer chose a channel but left no address for it: kept as failed, for an agent.
        logger.warning("notification %s by %s not sent: %s", notification.pk, notification.channel, missing)
        status = Notification.Status.FAILED
    except Exception:
        logger.exception("notification %s by %s failed", notification.pk, notification.channel)
        status = Notification.Status.FAILED
    else:
        status = Notification.Status.SENT
    Notification.objects.filter(pk=notification.pk, status=Notification.Status.PENDING).update(
        status=status, sent_at=timezone.now() if status == Notification.Status.SENT else None
    )


def _deliver(notification: Notification) -> None:
    preferences = _preferences(notification.customer)
    if notification.channel == Channel.EMAIL:
        if notification.user is not None:
            address = notification.user.email
        else:
            address = (preferences.notification_email if preferences else "") or notification.customer.email
        if not address:
            raise NoAddress("no e-mail address to send to")
        send_mail(notification.subject, notification.body, None, [address])
    elif notification.channel == Channel.SMS:
        msisdn = preferences.notification_msisdn if preferences else ""
        if not msisdn:
            raise NoAddress("no phone number to send to")
        sms_gateway().send(msisdn=msisdn, text=notification.body)
