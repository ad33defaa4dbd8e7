"""Factories for the suite. Balances are made through services so the ledger stays whole."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from charging.ledger import terms_of
from charging.models import Bucket, LedgerEntry, Tariff
from charging.services import bucket_grant, money_balance_open
from charging.units import Service, Unit
from portal.models import BillingAccount, ContactPreferences, Customer, Line

GB = 1024**3
MB = 1024**2


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("secret-pass")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    name = factory.Faker("name")
    email = factory.Faker("email")
    user = factory.SubFactory(UserFactory)
    preferences = factory.RelatedFactory("tests.factories.ContactPreferencesFactory", factory_related_name="customer")


class ContactPreferencesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactPreferences

    customer = factory.SubFactory(CustomerFactory, preferences=None)


class BillingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillingAccount

    customer = factory.SubFactory(CustomerFactory)
    number = factory.Sequence(lambda n: f"BA{n:010d}")
    kind = BillingAccount.Kind.PREPAID


class LineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Line

    billing_account = factory.SubFactory(BillingAccountFactory)
    msisdn = factory.Sequence(lambda n: f"3161{n:07d}")
    device_label = "Phone"


def data_bucket(line: Line, quantity: int = 1 * GB, *, days: int = 30, priority: int = 100, name: str = "Data"):
    return bucket_grant(
        line=line,
        name=name,
        unit=Unit.BYTES,
        quantity=quantity,
        valid_until=timezone.now() + timedelta(days=days),
        priority=priority,
    )


def default_data_tariff() -> Tariff:
    """One cent per megabyte, rounded up to whole kilobytes."""
    return Tariff.objects.create(
        name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, increment=1024, is_default=True
    )


def funded_account(line: Line):
    return money_balance_open(billing_account=line.billing_account)


def allowances_valid_from(buckets, valid_from) -> None:
    """Makes allowances valid from an earlier time, as if granted so: each bucket and the
    grant that says what it is (the ledger check proves their validity)."""
    for bucket in Bucket.objects.filter(pk__in=[getattr(b, "pk", b) for b in buckets]):
        bucket.valid_from = valid_from
        bucket.save(update_fields=["valid_from"])
        LedgerEntry.objects.filter(bucket=bucket, kind=LedgerEntry.Kind.GRANT).update(terms=terms_of(bucket))
