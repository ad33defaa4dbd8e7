"""Writes to customer accounts."""

from decimal import Decimal

from django.db import transaction
from django.utils.crypto import get_random_string

from portal.models import BillingAccount, ContactPreferences, Customer, Line


@transaction.atomic
def customer_create(
    *,
    name: str,
    email: str = "",
    kind: str = Customer.Kind.PERSON,
    user=None,
    preferred_channel: str = ContactPreferences.Channel.EMAIL,
) -> Customer:
    customer = Customer.objects.create(name=name, email=email, kind=kind, user=user)
    ContactPreferences.objects.create(customer=customer, preferred_channel=preferred_channel, notification_email=email)
    return customer


def billing_account_open(
    *,
    customer: Customer,
    kind: str = BillingAccount.Kind.PREPAID,
    currency: str = "EUR",
    credit_limit: Decimal = Decimal(0),
    number: str | None = None,
) -> BillingAccount:
    if kind == BillingAccount.Kind.PREPAID and credit_limit:
        raise ValueError("a prepaid account has no credit limit")
    return BillingAccount.objects.create(
        customer=customer,
        kind=kind,
        currency=currency,
        credit_limit=credit_limit,
        number=number or "BA" + get_random_string(10, allowed_chars="0123456789"),
    )


def line_create(*, billing_account: BillingAccount, msisdn: str, device_label: str = "") -> Line:
    return Line.objects.create(billing_account=billing_account, msisdn=msisdn, device_label=device_label)
