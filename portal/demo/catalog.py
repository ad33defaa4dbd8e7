"""The demo shop: plans with their rate plans and allowances, phones, accessories, add-ons,
a launch promotion and a welcome voucher. Loaded by ``portal.demo``."""

from decimal import Decimal

from catalog.models import ProductOffering, Promotion, PromotionPhase, Segment, Voucher
from charging.models import BucketDefinition, RatePlan, Tariff
from charging.units import Service, Unit

GB = 1024**3
MB = 1024**2
Kind = ProductOffering.Kind


def _plan(code: str, name: str, price: str, months: int, data_gb: int, minutes: int, **fields) -> ProductOffering:
    rate_plan = RatePlan.objects.create(code=code, name=name)
    Tariff.objects.create(
        rate_plan=rate_plan,
        name=f"{name} data",
        service=Service.DATA,
        price=Decimal("0.0050"),
        per_units=MB,
        increment=1024,
    )
    Tariff.objects.create(
        rate_plan=rate_plan, name=f"{name} calls", service=Service.VOICE, price=Decimal("0.0300"), per_units=60
    )
    plan = ProductOffering.objects.create(
        code=code,
        name=name,
        kind=Kind.PLAN,
        recurring_price=Decimal(price),
        contract_months=months,
        rate_plan=rate_plan,
        **fields,
    )
    plan.allowances.set(
        [
            BucketDefinition.objects.create(
                name=f"{name}: {data_gb} GB", unit=Unit.BYTES, quantity=data_gb * GB, validity_days=31
            ),
            BucketDefinition.objects.create(
                name=f"{name}: {minutes} min", unit=Unit.SECONDS, quantity=minutes * 60, validity_days=31
            ),
        ]
    )
    return plan


def _offering(code: str, name: str, kind: str, **fields) -> ProductOffering:
    return ProductOffering.objects.create(code=code, name=name, kind=kind, **fields)


def catalog_demo_load() -> None:
    unlimited = _plan("unlimited-40", "Unlimited 40", "35.00", 24, 40, 1000, description="40 GB, 1000 minutes")
    basic = _plan("basic-10", "Basic 10", "18.00", 12, 10, 300, description="10 GB, 300 minutes")
    sim_only = _plan("sim-only-5", "SIM only 5", "9.50", 0, 5, 100, description="No contract, cancel any month")
    business = _plan(
        "business-100",
        "Business 100",
        "49.00",
        24,
        100,
        3000,
        segment=Segment.ENTERPRISE,
        description="For company lines",
    )

    pixel = _offering(
        "pixel-9",
        "Pixel 9",
        Kind.HANDSET,
        one_off_price=Decimal("149.00"),
        shipping=ProductOffering.Shipping.DISTRIBUTOR,
    )
    iphone = _offering(
        "iphone-16",
        "iPhone 16",
        Kind.HANDSET,
        one_off_price=Decimal("299.00"),
        shipping=ProductOffering.Shipping.DISTRIBUTOR,
    )
    galaxy = _offering(
        "galaxy-s25",
        "Galaxy S25",
        Kind.HANDSET,
        one_off_price=Decimal("199.00"),
        shipping=ProductOffering.Shipping.DROP_SHIP,
    )
    pixel.compatible_plans.set([unlimited, basic, business])
    iphone.compatible_plans.set([unlimited, business])
    galaxy.compatible_plans.set([unlimited, basic, business])

    for handset in (pixel, iphone, galaxy):
        case = _offering(
            f"{handset.code}-case",
            f"{handset.name} case",
            Kind.ACCESSORY,
            one_off_price=Decimal("24.95"),
            shipping=ProductOffering.Shipping.DROP_SHIP,
        )
        case.fits_handsets.set([handset])
    charger = _offering(
        "usb-c-charger",
        "USB-C fast charger",
        Kind.ACCESSORY,
        one_off_price=Decimal("29.00"),
        shipping=ProductOffering.Shipping.DISTRIBUTOR,
    )
    charger.fits_handsets.set([pixel, iphone, galaxy])

    data_pass = _offering("data-pass-5", "5 GB data pass", Kind.ADDON, recurring_price=Decimal("5.00"))
    data_pass.allowances.set(
        [BucketDefinition.objects.create(name="Data pass 5 GB", unit=Unit.BYTES, quantity=5 * GB, validity_days=31)]
    )
    roaming = _offering("roaming-eu", "EU roaming pack", Kind.ADDON, recurring_price=Decimal("7.50"))
    roaming.allowances.set(
        [
            BucketDefinition.objects.create(
                name="EU roaming calls", unit=Unit.SECONDS, quantity=120 * 60, validity_days=31
            )
        ]
    )
    streaming = _offering(
        "streaming-tv", "Streaming TV", Kind.ADDON, recurring_price=Decimal("9.99"), content_sku="tv-basic"
    )
    for plan in (unlimited, basic, sim_only, business):
        plan.allowed_addons.set([data_pass, roaming, streaming])

    bundle = _offering(
        "pixel-9-unlimited",
        "Pixel 9 with Unlimited 40",
        Kind.BUNDLE,
        one_off_price=Decimal("49.00"),
        recurring_price=Decimal("42.00"),
        contract_months=24,
        description="The phone and the plan, one price",
    )
    bundle.components.set([pixel, unlimited])

    launch = Promotion.objects.create(name="Six months free", min_contract_months=24)
    launch.offerings.set([unlimited])
    PromotionPhase.objects.create(promotion=launch, sequence=1, periods=6, kind=PromotionPhase.Kind.FREE)

    welcome = Promotion.objects.create(name="Welcome: 10 off for three months", requires_voucher=True)
    welcome.offerings.set([unlimited, basic, sim_only])
    PromotionPhase.objects.create(
        promotion=welcome, sequence=1, periods=3, kind=PromotionPhase.Kind.FIXED, value=Decimal("10")
    )
    Voucher.objects.create(code="WELCOME10", promotion=welcome, max_uses=1000, once_per_customer=True)
