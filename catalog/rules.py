"""Eligibility (who may buy an offering) and compatibility (what may be sold with what).

Each check answers with the reason for a refusal, or None. They read only what they are given,
so a page can check a whole catalog against one load of the customer's products.
"""

from datetime import datetime

from catalog.models import Product, ProductOffering
from catalog.pricing import add_months

Kind = ProductOffering.Kind
ContractState = ProductOffering.ContractState


def plans_in_contract(products: list[Product], *, at: datetime) -> list[Product]:
    return [
        p
        for p in products
        if p.offering.kind == Kind.PLAN
        and p.status == Product.Status.ACTIVE
        and p.contract_ends_at is not None
        and p.contract_ends_at > at
    ]


def in_early_upgrade_window(product: Product, *, at: datetime) -> bool:
    """The last ``early_upgrade_months`` of a contract (or after it ended)."""
    if product.contract_ends_at is None:
        return True
    return at >= add_months(product.contract_ends_at, -product.offering.early_upgrade_months)


def eligibility_refusal(
    *, offering: ProductOffering, segment: str, products: list[Product], at: datetime
) -> str | None:
    """Why this customer may not buy the offering, or None. ``products``: their active ones."""
    if offering.segment and offering.segment != segment:
        return f"{offering.name} is sold to {offering.get_segment_display().lower()} customers only"
    in_contract = plans_in_contract(products, at=at)
    state = offering.contract_state
    if state == ContractState.NO_CONTRACT and in_contract:
        return f"{offering.name} is for customers without a plan in contract"
    if state == ContractState.IN_CONTRACT and not in_contract:
        return f"{offering.name} is for customers with a plan in contract"
    if state == ContractState.CONTRACT_ENDING and not any(in_early_upgrade_window(p, at=at) for p in in_contract):
        return f"{offering.name} is for customers whose contract ends soon"
    required = {plan.pk for plan in offering.requires_plans.all()}
    if required and not any(p.offering_id in required for p in products if p.status == Product.Status.ACTIVE):
        return f"{offering.name} needs one of these plans: " + ", ".join(
            sorted(plan.name for plan in offering.requires_plans.all())
        )
    return None


def compatibility_refusal(
    *, offering: ProductOffering, parent: ProductOffering | None, line_plan: ProductOffering | None
) -> str | None:
    """Why the offering cannot go with its parent item (or the line's current plan), or None."""
    if offering.kind == Kind.ADDON:
        plan = parent if parent is not None else line_plan
        if plan is None or plan.kind != Kind.PLAN:
            return f"{offering.name} is bought for a plan: choose a line or a plan in the cart"
        if not plan.allowed_addons.filter(pk=offering.pk).exists():
            return f"{offering.name} cannot be added to {plan.name}"
        return None
    if parent is None:
        return None
    if offering.kind == Kind.PLAN:
        if parent.kind != Kind.HANDSET or not parent.compatible_plans.filter(pk=offering.pk).exists():
            return f"{offering.name} cannot be sold with {parent.name}"
        return None
    if offering.kind == Kind.ACCESSORY:
        if parent.kind != Kind.HANDSET or not offering.fits_handsets.filter(pk=parent.pk).exists():
            return f"{offering.name} does not fit {parent.name}"
        return None
    return f"{offering.name} is sold on its own"
