"""Writes to carts and orders. Each service owns its transaction and re-checks every rule.

A cart is the customer's, whoever works on it: the customer on the web or an agent in the
admin. Placing it turns it into an order whose items each get their fulfilment steps; the
steps run as Celery tasks once the order is committed (see ``catalog.fulfilment``).
"""

from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from catalog import fulfilment, rules
from catalog.errors import CatalogError
from catalog.locks import cart_lock, order_lock, order_steps_lock, voucher_lock
from catalog.models import (
    CartItem,
    Channel,
    FulfilmentStep,
    OrderEvent,
    OrderItem,
    Product,
    ProductOffering,
    ProductOrder,
    ShoppingCart,
    Voucher,
)
from catalog.selectors import active_products_of, cart_summary, one_off_charges_pending, segment_of
from charging.locks import money_balance_lock
from charging.services import money_balance_open
from portal.models import BillingAccount, Customer, Line
from portal.money import format_money

Kind = ProductOffering.Kind


# --- Carts -----------------------------------------------------------------------------------


def cart_open(*, customer: Customer, channel: str = Channel.WEB, actor=None) -> ShoppingCart:
    """The customer's open cart, started now if there is none (one per customer, any channel)."""
    cart = ShoppingCart.objects.filter(customer=customer, status=ShoppingCart.Status.OPEN).first()
    if cart is not None:
        return cart
    try:
        with transaction.atomic():
            return ShoppingCart.objects.create(customer=customer, started_channel=channel, started_by=actor)
    except IntegrityError:
        # Started at the same moment in another channel: that one is the customer's cart.
        return ShoppingCart.objects.get(customer=customer, status=ShoppingCart.Status.OPEN)


def _sale_refusal(
    *, offering: ProductOffering, customer: Customer, channel: str, products: list[Product], at: datetime
) -> CatalogError | None:
    reason = rules.eligibility_refusal(offering=offering, segment=segment_of(customer), products=products, at=at)
    if reason:
        return CatalogError(reason, code="not_eligible", field="offering")
    sellable = (
        ProductOffering.objects.available(at=at)
        .sold_in(segment=segment_of(customer), channel=channel)
        .filter(pk=offering.pk)
        .exists()
    )
    if not sellable:
        return CatalogError(f"{offering.name} is not for sale here", code="not_for_sale", field="offering")
    return None


def _line_plan(*, customer: Customer, line: Line | None, products: list[Product]) -> ProductOffering | None:
    if line is None:
        return None
    if line.billing_account.customer_id != customer.pk:
        raise CatalogError("no such line", code="unknown_line", field="line")
    plans = [p.offering for p in products if p.line_id == line.pk and p.offering.kind == Kind.PLAN]
    return plans[0] if plans else None


@transaction.atomic
def cart_item_add(
    *,
    cart: ShoppingCart,
    offering: ProductOffering,
    channel: str = Channel.WEB,
    parent: CartItem | None = None,
    line: Line | None = None,
) -> CartItem:
    """Adds an offering to an open cart if the customer may buy it and it fits what it goes with."""
    cart = cart_lock(cart_id=cart.pk)
    if cart.status != ShoppingCart.Status.OPEN:
        raise CatalogError("this cart has been ordered already", code="cart_closed", field="cart")
    if parent is not None and parent.cart_id != cart.pk:
        raise CatalogError("no such item in this cart", code="unknown_item", field="parent")
    now = timezone.now()
    products = active_products_of(customer=cart.customer)
    refusal = _sale_refusal(offering=offering, customer=cart.customer, channel=channel, products=products, at=now)
    if refusal:
        raise refusal
    line_plan = _line_plan(customer=cart.customer, line=line, products=products)
    reason = rules.compatibility_refusal(
        offering=offering, parent=parent.offering if parent else None, line_plan=line_plan
    )
    if reason:
        raise CatalogError(reason, code="not_compatible", field="parent" if parent else "offering")
    item = CartItem.objects.create(cart=cart, offering=offering, parent=parent, line=line)
    cart.save(update_fields=["updated_at"])
    return item


@transaction.atomic
def cart_guided_add(
    *,
    cart: ShoppingCart,
    handset: ProductOffering,
    plan: ProductOffering | None,
    accessories: list[ProductOffering],
    channel: str = Channel.WEB,
) -> list[CartItem]:
    """What guided selling chose: a handset, the plan it is sold with, its accessories. All or none."""
    if handset.kind != Kind.HANDSET:
        raise CatalogError(f"{handset.name} is not a handset", code="not_a_handset", field="handset")
    handset_item = cart_item_add(cart=cart, offering=handset, channel=channel)
    items = [handset_item]
    if plan is not None:
        items.append(cart_item_add(cart=cart, offering=plan, channel=channel, parent=handset_item))
    for accessory in accessories:
        items.append(cart_item_add(cart=cart, offering=accessory, channel=channel, parent=handset_item))
    return items


@transaction.atomic
def cart_item_remove(*, cart: ShoppingCart, item_id: int) -> None:
    """Removes an item and what was bought with it (the add-ons of a plan, a handset's plan)."""
    cart = cart_lock(cart_id=cart.pk)
    if cart.status != ShoppingCart.Status.OPEN:
        raise CatalogError("this cart has been ordered already", code="cart_closed", field="cart")
    deleted, _ = CartItem.objects.filter(cart=cart, pk=item_id).delete()
    if not deleted:
        raise CatalogError("no such item in this cart", code="unknown_item", field="item")
    cart.save(update_fields=["updated_at"])


def _voucher_refusal(*, voucher: Voucher, cart: ShoppingCart, at: datetime) -> str | None:
    promotion = voucher.promotion
    if promotion.valid_from > at or (promotion.valid_until is not None and promotion.valid_until <= at):
        return "this voucher has expired"
    if promotion.segment and promotion.segment != segment_of(cart.customer):
        return f"this voucher is for {promotion.get_segment_display().lower()} customers"
    if voucher.max_uses is not None and voucher.uses >= voucher.max_uses:
        return "this voucher has been used up"
    if (
        voucher.once_per_customer
        and ProductOrder.objects.filter(customer=cart.customer, voucher=voucher)
        .exclude(state=ProductOrder.State.CANCELLED)
        .exists()
    ):
        return "this voucher has been used on an earlier order"
    names = set(promotion.offerings.values_list("pk", flat=True))
    matching = [i for i in cart.items.select_related("offering") if i.offering_id in names]
    if not matching:
        return "this voucher applies to nothing in the cart"
    if all(i.offering.contract_months < promotion.min_contract_months for i in matching):
        return f"this voucher needs a contract of at least {promotion.min_contract_months} months"
    return None


@transaction.atomic
def cart_voucher_apply(*, cart: ShoppingCart, code: str) -> ShoppingCart:
    cart = cart_lock(cart_id=cart.pk)
    if cart.status != ShoppingCart.Status.OPEN:
        raise CatalogError("this cart has been ordered already", code="cart_closed", field="cart")
    voucher = Voucher.objects.select_related("promotion").filter(code__iexact=code.strip()).first()
    if voucher is None:
        raise CatalogError("no such voucher", code="unknown_voucher", field="voucher")
    reason = _voucher_refusal(voucher=voucher, cart=cart, at=timezone.now())
    if reason:
        raise CatalogError(reason, code="voucher_refused", field="voucher")
    cart.voucher = voucher
    cart.save(update_fields=["voucher", "updated_at"])
    return cart


# --- Orders ----------------------------------------------------------------------------------


def _steps_for(offering: ProductOffering) -> list[str]:
    Step = FulfilmentStep.Kind
    if offering.kind == Kind.PLAN:
        return [Step.PROVISION, Step.ACTIVATE]
    if offering.kind == Kind.ADDON:
        return [Step.ACTIVATE, Step.DELIVER] if offering.content_sku else [Step.ACTIVATE]
    if offering.kind == Kind.BUNDLE:
        return []  # its parts have the steps; the bundle completes with them
    return [Step.SHIP]


def order_place(
    *, cart: ShoppingCart, placed_by, channel: str, billing_account: BillingAccount | None = None
) -> ProductOrder:
    """Turns the customer's cart into an order, whoever places it, and starts its fulfilment.

    Every rule is checked again (the catalog or the customer may have changed since the item
    went in); a voucher's use is counted here, under its lock, so its limits hold. The
    account must cover what the order charges once (``_funds_refusal``).
    """
    with transaction.atomic(durable=True):
        cart = cart_lock(cart_id=cart.pk)
        customer = cart.customer
        if cart.status != ShoppingCart.Status.OPEN:
            raise CatalogError("this cart has been ordered already", code="cart_closed", field="cart")
        items = list(cart.items.select_related("offering", "line__billing_account", "parent__offering").order_by("pk"))
        if not items:
            raise CatalogError("the cart is empty", code="cart_empty", field="cart")
        if billing_account is None:
            billing_account = customer.billing_accounts.order_by("pk").first()
        if billing_account is None or billing_account.customer_id != customer.pk:
            raise CatalogError("no such billing account", code="unknown_billing_account", field="billing_account")
        now = timezone.now()
        products = active_products_of(customer=customer)
        for item in items:
            refusal = _sale_refusal(
                offering=item.offering, customer=customer, channel=channel, products=products, at=now
            )
            if refusal:
                raise refusal
            reason = rules.compatibility_refusal(
                offering=item.offering,
                parent=item.parent.offering if item.parent else None,
                line_plan=_line_plan(customer=customer, line=item.line, products=products),
            )
            if reason:
                raise CatalogError(reason, code="not_compatible", field="cart")
        voucher = None
        if cart.voucher_id:
            voucher = voucher_lock(voucher_id=cart.voucher_id)
            reason = _voucher_refusal(voucher=voucher, cart=cart, at=now)
            if reason:
                raise CatalogError(reason, code="voucher_refused", field="voucher")
            Voucher.objects.filter(pk=voucher.pk).update(uses=F("uses") + 1)

        summary = cart_summary(cart=cart)
        refusal = _funds_refusal(account=billing_account, due=summary.today)
        if refusal:
            raise refusal
        priced = {p.item_id: p for p in summary.items}
        order = ProductOrder.objects.create(
            customer=customer,
            billing_account=billing_account,
            cart=cart,
            channel=channel,
            placed_by=placed_by,
            voucher=voucher,
            due_today=summary.today,
            monthly=summary.monthly,
            term_total=summary.term_total,
            created_at=now,
        )
        order_items: dict[int, OrderItem] = {}
        first_steps = []
        for item in items:
            price = priced[item.pk]
            parent = order_items.get(item.parent_id) if item.parent_id else None
            order_item = OrderItem.objects.create(
                order=order,
                offering=item.offering,
                parent=parent,
                line=item.line,
                one_off_price=item.offering.one_off_price,
                recurring_price=item.offering.recurring_price,
                contract_months=item.offering.contract_months,
                promotion=price.promotion,
                promotion_phases=[phase.as_json() for phase in price.phases],
            )
            order_items[item.pk] = order_item
            plan_product = None
            if item.line_id:
                plan_product = next(
                    (p for p in products if p.line_id == item.line_id and p.offering.kind == Kind.PLAN), None
                )
            Product.objects.create(
                customer=customer,
                billing_account=billing_account,
                offering=item.offering,
                order_item=order_item,
                line=item.line,
                parent=plan_product,
                recurring_price=order_item.recurring_price,
                contract_months=order_item.contract_months,
                promotion=order_item.promotion,
                promotion_phases=order_item.promotion_phases,
            )
            parts = [order_item]
            if item.offering.kind == Kind.BUNDLE:
                parts = _bundle_parts(order=order, bundle=order_item, customer=customer, account=billing_account)
            for part in parts:
                waits_for_parent = part.offering.kind == Kind.ADDON and part.parent_id is not None
                steps = _steps_create(order=order, item=part)
                if steps and not waits_for_parent:
                    first_steps.append(steps[0].pk)
        cart.status = ShoppingCart.Status.ORDERED
        cart.save(update_fields=["status", "updated_at"])
        via = "by an agent for the customer" if channel == Channel.ASSISTED else "on the web"
        OrderEvent.objects.create(order=order, actor=placed_by, text=f"Order placed {via}")
        fulfilment.steps_start_on_commit(step_ids=first_steps)
    return order


def _funds_refusal(*, account: BillingAccount, due: Decimal) -> CatalogError | None:
    """Refuses an order whose one-off charges the account cannot cover: what it may spend
    (its money, plus a postpaid account's credit limit, less what open sessions hold) less
    what its open orders will still charge. Read under the account's money lock (taken after
    the cart's and the voucher's, as charging's locks come after catalog's), so a checkout
    sees every charge and order committed before it, and the next one sees this one."""
    if due <= 0:
        return None
    money_balance_open(billing_account=account)
    balance = money_balance_lock(billing_account_id=account.pk)
    pending = one_off_charges_pending(billing_account_id=account.pk)
    covered = balance.amount + account.credit_limit - balance.reserved - pending
    if due <= covered:
        return None
    can = format_money(max(covered, Decimal(0)), account.currency)
    return CatalogError(
        f"This order costs {format_money(due, account.currency)} today; account {account.number} can cover {can}.",
        code="insufficient_funds",
        field="billing_account",
    )


def _steps_create(*, order: ProductOrder, item: OrderItem) -> list[FulfilmentStep]:
    for position, kind in enumerate(_steps_for(item.offering), start=1):
        FulfilmentStep.objects.create(order=order, item=item, kind=kind, sequence=position)
    return list(item.steps.order_by("sequence"))


def _bundle_parts(
    *, order: ProductOrder, bundle: OrderItem, customer: Customer, account: BillingAccount
) -> list[OrderItem]:
    """A bundle's parts as items of their own, priced at nothing: the bundle carries the price."""
    parts = []
    for component in bundle.offering.components.order_by("kind", "pk"):
        part = OrderItem.objects.create(
            order=order, offering=component, parent=bundle, contract_months=bundle.contract_months
        )
        Product.objects.create(
            customer=customer,
            billing_account=account,
            offering=component,
            order_item=part,
            contract_months=bundle.contract_months,
        )
        parts.append(part)
    return parts


def order_cancel(*, order: ProductOrder, reason: str, actor) -> ProductOrder:
    """Cancels an order until a step passes the point of no return (shipped, or live in charging).

    What was done already is undone: a provisioned number is released.
    """
    if not reason.strip():
        raise CatalogError("say why the order is cancelled", code="reason_required", field="reason")
    with transaction.atomic(durable=True):
        order = order_lock(order_id=order.pk)
        if not order.is_open:
            raise CatalogError(f"the order is {order.get_state_display().lower()}", code="not_cancellable")
        steps = order_steps_lock(order_id=order.pk)
        for step in steps:
            if step.kind in FulfilmentStep.POINT_OF_NO_RETURN and step.state in (
                FulfilmentStep.State.RUNNING,
                FulfilmentStep.State.DONE,
            ):
                raise CatalogError(
                    f"too late to cancel: {step.get_kind_display().lower()} has started for {step.item.offering}",
                    code="not_cancellable",
                )
        now = timezone.now()
        for step in steps:
            if step.state == FulfilmentStep.State.DONE:
                fulfilment.step_compensate(step=step)
            elif step.state not in (FulfilmentStep.State.FAILED, FulfilmentStep.State.COMPENSATED):
                step.state = FulfilmentStep.State.CANCELLED
                step.finished_at = now
                step.save(update_fields=["state", "finished_at"])
        order.items.update(state=OrderItem.State.CANCELLED, state_reason=reason)
        Product.objects.filter(order_item__order=order).update(status=Product.Status.TERMINATED, terminated_at=now)
        if order.voucher_id:
            voucher_lock(voucher_id=order.voucher_id)
            Voucher.objects.filter(pk=order.voucher_id).update(uses=F("uses") - 1)
        order.state = ProductOrder.State.CANCELLED
        order.state_reason = reason
        order.completed_at = now
        order.save(update_fields=["state", "state_reason", "completed_at"])
        OrderEvent.objects.create(order=order, actor=actor, text=f"Cancelled: {reason}"[:255])
    return order
