"""Catalog factories: a small shop of a plan with its rate plan and allowances, a handset,
an accessory, an add-on, and the customers who buy them."""

from datetime import UTC, datetime
from decimal import Decimal

import factory

from catalog.models import Channel, ProductOffering, Promotion, PromotionPhase, Voucher
from catalog.services import cart_open
from charging.models import BucketDefinition, RatePlan, Tariff
from charging.units import Service, Unit
from portal.models import BillingAccount
from tests.factories import GB, MB, BillingAccountFactory

Kind = ProductOffering.Kind


class RatePlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RatePlan

    code = factory.Sequence(lambda n: f"rate-plan-{n}")
    name = factory.Sequence(lambda n: f"Rate plan {n}")


class BucketDefinitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BucketDefinition

    name = "Data 10 GB"
    unit = Unit.BYTES
    quantity = 10 * GB
    validity_days = 30


class OfferingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductOffering
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"offering-{n}")
    name = factory.Sequence(lambda n: f"Offering {n}")
    kind = Kind.ACCESSORY
    one_off_price = Decimal("0")
    recurring_price = Decimal("0")
    valid_from = datetime(2020, 1, 1, tzinfo=UTC)


class PlanFactory(OfferingFactory):
    kind = Kind.PLAN
    name = factory.Sequence(lambda n: f"Plan {n}")
    recurring_price = Decimal("30.00")
    contract_months = 24
    rate_plan = factory.SubFactory(RatePlanFactory)

    @factory.post_generation
    def allowances(self, create, extracted, **kwargs):
        if create:
            self.allowances.set(extracted if extracted is not None else [BucketDefinitionFactory()])


class HandsetFactory(OfferingFactory):
    kind = Kind.HANDSET
    name = factory.Sequence(lambda n: f"Phone {n}")
    one_off_price = Decimal("99.00")
    shipping = ProductOffering.Shipping.DISTRIBUTOR


class AccessoryFactory(OfferingFactory):
    kind = Kind.ACCESSORY
    name = factory.Sequence(lambda n: f"Case {n}")
    one_off_price = Decimal("19.95")
    shipping = ProductOffering.Shipping.DROP_SHIP


class AddonFactory(OfferingFactory):
    kind = Kind.ADDON
    name = factory.Sequence(lambda n: f"Data pass {n}")
    recurring_price = Decimal("5.00")

    @factory.post_generation
    def allowances(self, create, extracted, **kwargs):
        if create:
            self.allowances.set(
                extracted if extracted is not None else [BucketDefinitionFactory(name="Data 5 GB", quantity=5 * GB)]
            )


def promotion(name: str, offerings, phases: list[tuple[int, str, str]], **fields) -> Promotion:
    promo = Promotion.objects.create(name=name, **fields)
    promo.offerings.set(offerings)
    for sequence, (periods, kind, value) in enumerate(phases, start=1):
        PromotionPhase.objects.create(
            promotion=promo, sequence=sequence, periods=periods, kind=kind, value=Decimal(value)
        )
    return promo


def voucher(code: str, promo: Promotion, **fields) -> Voucher:
    return Voucher.objects.create(code=code, promotion=promo, **fields)


def default_tariffs() -> None:
    Tariff.objects.create(
        name="Data", service=Service.DATA, price=Decimal("0.01"), per_units=MB, increment=1024, is_default=True
    )


def shop() -> dict:
    """A handset sold with one of two plans, a case that fits it, and a data pass on the plans."""
    plan = PlanFactory(name="Unlimited 20", code="unlimited-20", recurring_price=Decimal("30.00"))
    small = PlanFactory(name="Basic 5", code="basic-5", recurring_price=Decimal("15.00"), contract_months=12)
    other = PlanFactory(name="Sim only 1", code="sim-only-1", recurring_price=Decimal("9.00"), contract_months=0)
    handset = HandsetFactory(name="Pixel 9", code="pixel-9", one_off_price=Decimal("199.00"))
    handset.compatible_plans.set([plan, small])
    case = AccessoryFactory(name="Pixel 9 case", code="pixel-9-case")
    case.fits_handsets.set([handset])
    charger = AccessoryFactory(name="Other case", code="other-case")
    addon = AddonFactory(name="Data pass 5 GB", code="data-pass-5")
    plan.allowed_addons.set([addon])
    small.allowed_addons.set([addon])
    return {
        "plan": plan,
        "small": small,
        "other": other,
        "handset": handset,
        "case": case,
        "charger": charger,
        "addon": addon,
    }


def buyer_account(**fields) -> BillingAccount:
    """A postpaid account with room for what these tests order: checkout refuses an order
    the account cannot cover."""
    return BillingAccountFactory(kind=BillingAccount.Kind.POSTPAID, credit_limit=Decimal("1000"), **fields)


def cart_for(account=None, *, channel=Channel.WEB):
    account = account or buyer_account()
    return cart_open(customer=account.customer, channel=channel), account
