"""Reads of the catalog, carts, orders and products, always scoped to who is asking.

Browse and guided selling load a page of offerings with a fixed number of queries, whatever
the catalog's size: every relation a page shows is prefetched.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from catalog import pricing
from catalog.models import (
    CartItem,
    Channel,
    FulfilmentStep,
    OrderItem,
    Product,
    ProductOffering,
    ProductOrder,
    Promotion,
    PromotionPhase,
    Segment,
    ShoppingCart,
)
from portal.models import Customer
from portal.money import money

Kind = ProductOffering.Kind


def segment_of(customer: Customer) -> str:
    return Segment.ENTERPRISE if customer.kind == Customer.Kind.COMPANY else Segment.CONSUMER


def customer_of(*, user: AbstractBaseUser | AnonymousUser) -> Customer | None:
    """The customer a logged-in consumer acts as (their first, if they own several)."""
    if not user.is_authenticated:
        return None
    return Customer.objects.filter(user=user).order_by("pk").first()


# --- Offerings -------------------------------------------------------------------------------


def promotions_prefetch(*, at: datetime | None = None) -> Prefetch:
    at = at or timezone.now()
    active = (
        Promotion.objects.filter(requires_voucher=False, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .prefetch_related(Prefetch("phases", queryset=PromotionPhase.objects.order_by("sequence")))
    )
    return Prefetch("promotions", queryset=active, to_attr="active_promotions")


def offerings_for_sale(
    *,
    segment: str,
    channel: str = Channel.WEB,
    kind: str | None = None,
    search: str = "",
    at: datetime | None = None,
) -> QuerySet[ProductOffering]:
    """Offerings a segment may buy in a channel now, with what their cards show prefetched."""
    offerings = ProductOffering.objects.available(at=at).sold_in(segment=segment, channel=channel)
    if kind:
        offerings = offerings.filter(kind=kind)
    if search:
        offerings = offerings.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return offerings.select_related("rate_plan").prefetch_related(
        "allowances", "components", promotions_prefetch(at=at)
    )


def plans_for_handset(*, handset: ProductOffering, segment: str, channel: str = Channel.WEB) -> QuerySet:
    return offerings_for_sale(segment=segment, channel=channel, kind=Kind.PLAN).filter(compatible_handsets=handset)


def accessories_for_handset(*, handset: ProductOffering, segment: str, channel: str = Channel.WEB) -> QuerySet:
    return offerings_for_sale(segment=segment, channel=channel, kind=Kind.ACCESSORY).filter(fits_handsets=handset)


def addons_for_plan(*, plan: ProductOffering, segment: str, channel: str = Channel.WEB) -> QuerySet:
    return offerings_for_sale(segment=segment, channel=channel, kind=Kind.ADDON).filter(allowed_on_plans=plan)


def best_promotion(offering: ProductOffering, *, segment: str, contract_months: int) -> Promotion | None:
    """Of the automatic promotions prefetched on an offering, the one worth most over the term."""
    candidates = [
        p
        for p in getattr(offering, "active_promotions", [])
        if (not p.segment or p.segment == segment) and contract_months >= p.min_contract_months
    ]
    if not candidates:
        return None
    term = max(contract_months, 1)
    return min(
        candidates,
        key=lambda p: (pricing.term_total(offering.recurring_price, phases_of(p), term), p.pk),
    )


def phases_of(promotion: Promotion | None) -> list[pricing.Phase]:
    if promotion is None:
        return []
    return [pricing.Phase(periods=p.periods, kind=p.kind, value=p.value) for p in promotion.phases.all()]


def promotion_label(promotion: Promotion | None) -> str:
    if promotion is None:
        return ""
    return f"{promotion.name}: " + ", then ".join(phase.describe() for phase in phases_of(promotion))


# --- Price summary ---------------------------------------------------------------------------


@dataclass
class PricedItem:
    offering: ProductOffering
    promotion: Promotion | None
    phases: list[pricing.Phase]
    today: Decimal
    monthly: Decimal
    term_total: Decimal
    label: str
    item_id: int | None = None
    line_msisdn: str = ""


@dataclass
class PriceSummary:
    items: list[PricedItem] = field(default_factory=list)
    today: Decimal = Decimal("0.0000")
    monthly: Decimal = Decimal("0.0000")
    term_months: int = 0
    term_total: Decimal = Decimal("0.0000")


def price_summary(
    entries: list[tuple[ProductOffering, int | None, str]],
    *,
    segment: str,
    voucher_promotion: Promotion | None = None,
) -> PriceSummary:
    """Today (one-offs), monthly (the first period's recurring) and over the longest term.

    ``entries`` are (offering, cart item id or None, line MSISDN). A voucher's promotion beats
    the automatic ones for the offerings it names. The offerings must carry their prefetched
    ``active_promotions`` (as the selectors above load them).
    """
    term = max((offering.contract_months for offering, _, _ in entries), default=0)
    summary = PriceSummary(term_months=term)
    voucher_offering_ids = set()
    if voucher_promotion is not None:
        voucher_offering_ids = {o.pk for o in voucher_promotion.offerings.all()}
    for offering, item_id, msisdn in entries:
        if (
            voucher_promotion is not None
            and offering.pk in voucher_offering_ids
            and offering.contract_months >= voucher_promotion.min_contract_months
        ):
            promotion = voucher_promotion
        else:
            promotion = best_promotion(offering, segment=segment, contract_months=offering.contract_months)
        phases = phases_of(promotion)
        periods = max(term, 1) if offering.recurring_price else 0
        item = PricedItem(
            offering=offering,
            promotion=promotion,
            phases=phases,
            today=money(offering.one_off_price),
            monthly=pricing.period_price(offering.recurring_price, phases, 0),
            term_total=money(offering.one_off_price) + pricing.term_total(offering.recurring_price, phases, periods),
            label=promotion_label(promotion),
            item_id=item_id,
            line_msisdn=msisdn,
        )
        summary.items.append(item)
        summary.today += item.today
        summary.monthly += item.monthly
        summary.term_total += item.term_total
    return summary


# --- Carts, orders, products -----------------------------------------------------------------


def carts_visible_to(*, user) -> QuerySet[ShoppingCart]:
    if not user.is_authenticated:
        return ShoppingCart.objects.none()
    return ShoppingCart.objects.filter(customer__user=user)


def cart_open_for(*, customer: Customer) -> ShoppingCart | None:
    return ShoppingCart.objects.filter(customer=customer, status=ShoppingCart.Status.OPEN).first()


def cart_items(*, cart: ShoppingCart, at: datetime | None = None) -> list[CartItem]:
    return list(
        cart.items.select_related("line")
        .prefetch_related(
            Prefetch(
                "offering",
                queryset=ProductOffering.objects.select_related("rate_plan").prefetch_related(
                    "allowances", promotions_prefetch(at=at)
                ),
            )
        )
        .order_by("pk")
    )


def cart_summary(*, cart: ShoppingCart) -> PriceSummary:
    items = cart_items(cart=cart)
    voucher_promotion = None
    if cart.voucher_id:
        voucher_promotion = (
            Promotion.objects.prefetch_related("phases", "offerings").filter(vouchers__pk=cart.voucher_id).first()
        )
    return price_summary(
        [(item.offering, item.pk, item.line.msisdn if item.line else "") for item in items],
        segment=segment_of(cart.customer),
        voucher_promotion=voucher_promotion,
    )


def orders_visible_to(*, user) -> QuerySet[ProductOrder]:
    if not user.is_authenticated:
        return ProductOrder.objects.none()
    return ProductOrder.objects.filter(customer__user=user)


def one_off_charges_pending(*, billing_account_id: int) -> Decimal:
    """What the account's open orders will still charge once: the one-off prices of items not
    yet completed (an item's one-off price is charged when it completes). Summed exactly, in
    Python: SQLite would sum the prices as floating point."""
    prices = OrderItem.objects.filter(
        order__billing_account_id=billing_account_id,
        state__in=[OrderItem.State.ACKNOWLEDGED, OrderItem.State.IN_PROGRESS],
        one_off_price__gt=0,
    ).values_list("one_off_price", flat=True)
    return money(sum(prices, Decimal(0)))


def order_timeline(*, order: ProductOrder) -> list[FulfilmentStep]:
    return list(order.steps.select_related("item", "item__offering").order_by("item_id", "sequence"))


def order_items(*, order: ProductOrder) -> list[OrderItem]:
    return list(order.items.select_related("offering", "promotion", "line").order_by("pk"))


def products_visible_to(*, user) -> QuerySet[Product]:
    if not user.is_authenticated:
        return Product.objects.none()
    return Product.objects.filter(customer__user=user)


def active_products_of(*, customer: Customer) -> list[Product]:
    return list(
        Product.objects.filter(customer=customer, status__in=[Product.Status.ACTIVE, Product.Status.SUSPENDED])
        .select_related("offering", "line")
        .order_by("pk")
    )
