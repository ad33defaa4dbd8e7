"""The shop for consumers: browse, guided selling, cart, checkout, order tracking.

Views check access, call one selector or service, and render. Each page loads its offerings
with a fixed number of queries, whatever the catalog's size.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalog.errors import CatalogError
from catalog.models import Channel, ProductOffering
from catalog.selectors import (
    accessories_for_handset,
    active_products_of,
    cart_open_for,
    cart_summary,
    customer_of,
    offerings_for_sale,
    order_items,
    order_timeline,
    orders_visible_to,
    plans_for_handset,
    price_summary,
    products_visible_to,
    segment_of,
)
from catalog.services import cart_guided_add, cart_item_add, cart_item_remove, cart_open, cart_voucher_apply
from catalog.services import order_cancel as order_cancel_service
from catalog.services import order_place as order_place_service
from catalog.subscriptions import plan_change_quote, product_plan_change

Kind = ProductOffering.Kind
PAGE_SIZE = 48


def _customer_or_404(request):
    customer = customer_of(user=request.user)
    if customer is None:
        raise Http404("no customer account for this login")
    return customer


@login_required
def browse(request):
    customer = _customer_or_404(request)
    kind = request.GET.get("kind", "")
    search = request.GET.get("q", "").strip()[:100]
    offerings = offerings_for_sale(
        segment=segment_of(customer), kind=kind if kind in Kind.values else None, search=search
    )
    page = Paginator(offerings, PAGE_SIZE).get_page(request.GET.get("page"))
    lines = [p.line for p in active_products_of(customer=customer) if p.offering.kind == Kind.PLAN and p.line]
    return render(
        request,
        "catalog/browse.html",
        {"page": page, "offerings": page.object_list, "kinds": Kind.choices, "kind": kind, "q": search, "lines": lines},
    )


def _pick(queryset, value):
    if not str(value or "").isdigit():
        return None
    return next((o for o in queryset if o.pk == int(value)), None)


@login_required
def guided(request):
    """Handset, then the plans that fit it, then its accessories; the price follows each step."""
    customer = _customer_or_404(request)
    segment = segment_of(customer)
    params = request.POST if request.method == "POST" else request.GET
    handsets = list(offerings_for_sale(segment=segment, kind=Kind.HANDSET))
    handset = _pick(handsets, params.get("handset"))
    plans, accessories, plan, chosen = [], [], None, []
    if handset is not None:
        plans = list(plans_for_handset(handset=handset, segment=segment))
        plan = _pick(plans, params.get("plan"))
        accessories = list(accessories_for_handset(handset=handset, segment=segment))
        wanted = set(params.getlist("accessory"))
        chosen = [a for a in accessories if str(a.pk) in wanted]
    if request.method == "POST" and handset is not None:
        cart = cart_open(customer=customer, channel=Channel.WEB, actor=request.user)
        try:
            cart_guided_add(cart=cart, handset=handset, plan=plan, accessories=chosen)
        except CatalogError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{handset.name} is in your cart.")
            return redirect("catalog:cart")
    selection = [o for o in (handset, plan, *chosen) if o is not None]
    summary = price_summary([(o, None, "") for o in selection], segment=segment)
    step = 1 if handset is None else (2 if plan is None and "plan" not in params else 3)
    return render(
        request,
        "catalog/guided.html",
        {
            "step": step,
            "handsets": handsets,
            "handset": handset,
            "plans": plans,
            "plan": plan,
            "accessories": accessories,
            "chosen": {a.pk for a in chosen},
            "summary": summary,
        },
    )


@login_required
def cart(request):
    customer = _customer_or_404(request)
    current = cart_open_for(customer=customer)
    summary = cart_summary(cart=current) if current else None
    return render(
        request,
        "catalog/cart.html",
        {"cart": current, "summary": summary, "accounts": customer.billing_accounts.order_by("pk")},
    )


@login_required
@require_POST
def cart_add(request):
    customer = _customer_or_404(request)
    offering = get_object_or_404(ProductOffering, pk=request.POST.get("offering", "0") or 0)
    line = None
    if request.POST.get("line"):
        line = next(
            (p.line for p in active_products_of(customer=customer) if str(p.line_id) == request.POST["line"]), None
        )
        if line is None:
            raise Http404("no such line")
    try:
        cart_item_add(cart=cart_open(customer=customer, actor=request.user), offering=offering, line=line)
    except CatalogError as error:
        messages.error(request, error.message)
        return redirect("catalog:browse")
    messages.success(request, f"{offering.name} is in your cart.")
    return redirect("catalog:cart")


@login_required
@require_POST
def cart_remove(request, item_id: int):
    customer = _customer_or_404(request)
    current = cart_open_for(customer=customer)
    if current is None:
        raise Http404("no open cart")
    try:
        cart_item_remove(cart=current, item_id=item_id)
    except CatalogError as error:
        raise Http404(error.message) from error
    return redirect("catalog:cart")


@login_required
@require_POST
def cart_voucher(request):
    customer = _customer_or_404(request)
    current = cart_open_for(customer=customer)
    if current is None:
        raise Http404("no open cart")
    try:
        cart_voucher_apply(cart=current, code=request.POST.get("code", ""))
    except CatalogError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Voucher applied.")
    return redirect("catalog:cart")


@login_required
@require_POST
def checkout(request):
    customer = _customer_or_404(request)
    current = cart_open_for(customer=customer)
    if current is None:
        raise Http404("no open cart")
    account = customer.billing_accounts.filter(pk=request.POST.get("billing_account") or 0).first()
    try:
        order = order_place_service(cart=current, placed_by=request.user, channel=Channel.WEB, billing_account=account)
    except CatalogError as error:
        messages.error(request, error.message)
        return redirect("catalog:cart")
    return redirect("catalog:order-detail", order_id=order.pk)


@login_required
def orders(request):
    mine = orders_visible_to(user=request.user).select_related("placed_by")[:50]
    return render(request, "catalog/orders.html", {"orders": mine})


def _order_context(request, order_id: int) -> dict:
    order = get_object_or_404(orders_visible_to(user=request.user).select_related("placed_by"), pk=order_id)
    return {"order": order, "items": order_items(order=order), "steps": order_timeline(order=order)}


@login_required
def order_detail(request, order_id: int):
    return render(request, "catalog/order_detail.html", _order_context(request, order_id))


@login_required
def order_timeline_fragment(request, order_id: int):
    """The timeline alone, for the page's script to refresh while fulfilment runs."""
    return render(request, "catalog/_timeline.html", _order_context(request, order_id))


@login_required
@require_POST
def order_cancel(request, order_id: int):
    order = get_object_or_404(orders_visible_to(user=request.user), pk=order_id)
    try:
        order_cancel_service(
            order=order, reason=request.POST.get("reason", "") or "cancelled by the customer", actor=request.user
        )
    except CatalogError as error:
        messages.error(request, error.message)
    return redirect("catalog:order-detail", order_id=order.pk)


@login_required
def products(request):
    mine = products_visible_to(user=request.user).select_related("offering", "line", "promotion")
    return render(request, "catalog/products.html", {"products": mine.exclude(status="terminated")})


@login_required
def product_change_plan(request, product_id: int):
    """Plans the line could move to, each with what the change credits and costs now."""
    customer = _customer_or_404(request)
    product = get_object_or_404(
        products_visible_to(user=request.user).select_related("customer", "offering", "line"),
        pk=product_id,
        status="active",
        offering__kind=Kind.PLAN,
    )
    plans = offerings_for_sale(segment=segment_of(customer), kind=Kind.PLAN).exclude(pk=product.offering_id)
    if request.method == "POST":
        offering = next((p for p in plans if str(p.pk) == request.POST.get("offering")), None)
        if offering is None:
            raise Http404("no such plan")
        try:
            product_plan_change(product=product, offering=offering, actor=request.user, reason="changed online")
        except CatalogError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"Your line is now on {offering.name}.")
            return redirect("catalog:products")
    quotes = [(plan, plan_change_quote(product=product, offering=plan)) for plan in plans]
    return render(request, "catalog/change_plan.html", {"product": product, "quotes": quotes})
