"""The catalog in the call-centre workspace: offerings, promotions, carts, orders with their
steps, and the installed base. Actions call services and ask for a reason; money is read-only."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path

from catalog.errors import CatalogError
from catalog.fulfilment import fulfilment_step_retry
from catalog.models import (
    CartItem,
    Channel,
    FulfilmentStep,
    OrderEvent,
    OrderItem,
    Product,
    ProductEvent,
    ProductOffering,
    ProductOrder,
    Promotion,
    PromotionPhase,
    RecurringCharge,
    ShoppingCart,
    Voucher,
)
from catalog.services import cart_item_add, cart_open, order_cancel, order_place
from catalog.subscriptions import plan_change_quote, product_plan_change, product_suspend, product_terminate
from portal.admin.read_only import ReadOnlyInline
from portal.admin.reasons import with_reason
from portal.models import Customer, Line


@admin.register(ProductOffering)
class ProductOfferingAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "one_off_price", "recurring_price", "contract_months", "segment", "valid_until"]
    list_filter = ["kind", "segment", "sold_on_web", "sold_assisted"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    filter_horizontal = [
        "allowances",
        "requires_plans",
        "compatible_plans",
        "fits_handsets",
        "allowed_addons",
        "components",
    ]
    list_select_related = ["rate_plan"]


class PromotionPhaseInline(admin.TabularInline):
    model = PromotionPhase
    extra = 1


@admin.register(Promotion)
class PromotionAdmin(admin.ModelAdmin):
    list_display = ["name", "segment", "min_contract_months", "requires_voucher", "valid_from", "valid_until"]
    filter_horizontal = ["offerings"]
    inlines = [PromotionPhaseInline]


@admin.register(Voucher)
class VoucherAdmin(admin.ModelAdmin):
    list_display = ["code", "promotion", "uses", "max_uses", "once_per_customer"]
    search_fields = ["code"]
    readonly_fields = ["uses"]


class CartItemInline(ReadOnlyInline):
    model = CartItem
    fields = ["offering", "parent", "line", "added_at"]
    readonly_fields = fields


class CartStartForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.order_by("name"))


class CartItemAddForm(forms.Form):
    offering = forms.ModelChoiceField(queryset=ProductOffering.objects.none())
    parent = forms.ModelChoiceField(
        queryset=CartItem.objects.none(), required=False, help_text="The handset or plan it goes with."
    )
    line = forms.ModelChoiceField(queryset=Line.objects.none(), required=False, help_text="An add-on's line.")

    def __init__(self, *args, cart: ShoppingCart, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["offering"].queryset = ProductOffering.objects.available().order_by("kind", "name")
        self.fields["parent"].queryset = cart.items.select_related("offering")
        self.fields["line"].queryset = Line.objects.filter(billing_account__customer=cart.customer)


@admin.register(ShoppingCart)
class ShoppingCartAdmin(admin.ModelAdmin):
    """An agent starts a customer's cart (or picks up the one they started online), adds to it
    through the same rules as the web, and places the order for them."""

    list_display = ["pk", "customer", "status", "started_channel", "started_by", "updated_at"]
    list_filter = ["status", "started_channel"]
    search_fields = ["customer__name", "customer__email", "customer__billing_accounts__lines__msisdn"]
    readonly_fields = ["customer", "status", "voucher", "started_channel", "started_by", "created_at", "updated_at"]
    inlines = [CartItemInline]
    list_select_related = ["customer", "started_by"]
    actions = ["place_order"]
    change_form_template = "admin/catalog/shoppingcart_change_form.html"

    def get_urls(self):
        extra = [
            path("start/", self.admin_site.admin_view(self.start_view), name="catalog_shoppingcart_start"),
            path(
                "<int:cart_id>/add-item/",
                self.admin_site.admin_view(self.add_item_view),
                name="catalog_shoppingcart_add_item",
            ),
        ]
        return extra + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return redirect("admin:catalog_shoppingcart_start")

    def start_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = CartStartForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            cart = cart_open(customer=form.cleaned_data["customer"], channel=Channel.ASSISTED, actor=request.user)
            return redirect("admin:catalog_shoppingcart_change", cart.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Start a cart for a customer",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/catalog/form.html", context)

    def add_item_view(self, request, cart_id: int):
        if not self.has_change_permission(request):
            raise PermissionDenied
        cart = get_object_or_404(ShoppingCart, pk=cart_id)
        form = CartItemAddForm(request.POST or None, cart=cart)
        if request.method == "POST" and form.is_valid():
            try:
                cart_item_add(
                    cart=cart,
                    offering=form.cleaned_data["offering"],
                    channel=Channel.ASSISTED,
                    parent=form.cleaned_data["parent"],
                    line=form.cleaned_data["line"],
                )
            except CatalogError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                self.message_user(request, f"{form.cleaned_data['offering']} added.", messages.SUCCESS)
                return redirect("admin:catalog_shoppingcart_change", cart.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Add to {cart}",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/catalog/form.html", context)

    @with_reason("Place the order for the customer (assisted sale)")
    def place_order(self, request, queryset, reason):
        for cart in queryset.filter(status=ShoppingCart.Status.OPEN):
            try:
                order = order_place(cart=cart, placed_by=request.user, channel=Channel.ASSISTED)
            except CatalogError as error:
                self.message_user(request, f"{cart}: {error.message}", messages.ERROR)
                continue
            OrderEvent.objects.create(order=order, actor=request.user, text=f"Agent's note: {reason}"[:255])
            self.message_user(request, f"{order} placed for {cart.customer}.", messages.SUCCESS)


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ["offering", "state", "state_reason", "line", "one_off_price", "recurring_price", "promotion"]
    readonly_fields = fields


class FulfilmentStepInline(ReadOnlyInline):
    model = FulfilmentStep
    fields = [
        "item",
        "kind",
        "state",
        "attempts",
        "round",
        "partner_reference",
        "last_error",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "actor", "text"]
    readonly_fields = fields


@admin.register(ProductOrder)
class ProductOrderAdmin(admin.ModelAdmin):
    list_display = ["pk", "customer", "state", "channel", "placed_by", "due_today", "monthly", "created_at"]
    list_filter = ["state", "channel"]
    search_fields = ["pk", "customer__name", "customer__email", "billing_account__number"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ProductOrder._meta.fields]
    inlines = [OrderItemInline, FulfilmentStepInline, OrderEventInline]
    list_select_related = ["customer", "placed_by"]
    actions = ["cancel", "retry_failed_steps"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @with_reason("Cancel the selected orders")
    def cancel(self, request, queryset, reason):
        for order in queryset:
            try:
                order_cancel(order=order, reason=reason, actor=request.user)
            except CatalogError as error:
                self.message_user(request, f"{order}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{order} cancelled.", messages.SUCCESS)

    @with_reason("Retry the failed steps of the selected orders")
    def retry_failed_steps(self, request, queryset, reason):
        steps = FulfilmentStep.objects.filter(order__in=queryset, state=FulfilmentStep.State.FAILED)
        for step in steps.select_related("order"):
            try:
                fulfilment_step_retry(step=step, actor=request.user, reason=reason)
            except CatalogError as error:
                self.message_user(request, f"{step}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{step} retried.", messages.SUCCESS)


class ProductEventInline(ReadOnlyInline):
    model = ProductEvent
    fields = ["created_at", "actor", "text"]
    readonly_fields = fields


class RecurringChargeInline(ReadOnlyInline):
    model = RecurringCharge
    fields = ["period_start", "period_index", "base_amount", "amount", "description"]
    readonly_fields = fields


class PlanChangeForm(forms.Form):
    offering = forms.ModelChoiceField(queryset=ProductOffering.objects.none(), label="New plan")
    reason = forms.CharField(max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plans = ProductOffering.objects.available().filter(kind=ProductOffering.Kind.PLAN)
        self.fields["offering"].queryset = plans.order_by("name")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """The installed base. A plan is changed through a quote the agent confirms with a reason."""

    list_display = ["pk", "offering", "customer", "line", "status", "started_at", "contract_ends_at"]
    list_filter = ["status", "offering__kind"]
    search_fields = ["customer__name", "line__msisdn", "offering__name"]
    readonly_fields = [f.name for f in Product._meta.fields]
    inlines = [RecurringChargeInline, ProductEventInline]
    list_select_related = ["offering", "customer", "line"]
    change_form_template = "admin/catalog/product_change_form.html"
    actions = ["terminate", "suspend", "resume"]

    def has_add_permission(self, request):
        return False

    def _each(self, request, queryset, service, done: str, **kwargs):
        for product in queryset:
            try:
                service(product=product, actor=request.user, **kwargs)
            except CatalogError as error:
                self.message_user(request, f"{product}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{product.offering} {done}.", messages.SUCCESS)

    @with_reason("Terminate (credits unused days, charges any early termination fee)")
    def terminate(self, request, queryset, reason):
        self._each(request, queryset, product_terminate, "terminated", reason=reason)

    @with_reason("Suspend (no recurring charges while suspended)")
    def suspend(self, request, queryset, reason):
        self._each(request, queryset, product_suspend, "suspended", suspend=True, reason=reason)

    @with_reason("Resume")
    def resume(self, request, queryset, reason):
        self._each(request, queryset, product_suspend, "resumed", suspend=False, reason=reason)

    def get_urls(self):
        extra = [
            path(
                "<int:product_id>/change-plan/",
                self.admin_site.admin_view(self.change_plan_view),
                name="catalog_product_change_plan",
            ),
        ]
        return extra + super().get_urls()

    def change_plan_view(self, request, product_id: int):
        if not self.has_change_permission(request):
            raise PermissionDenied
        product = get_object_or_404(Product.objects.select_related("customer", "offering"), pk=product_id)
        form = PlanChangeForm(request.POST or None)
        quote = None
        if request.method == "POST" and form.is_valid():
            offering = form.cleaned_data["offering"]
            if "confirm" in request.POST:
                try:
                    new = product_plan_change(
                        product=product, offering=offering, actor=request.user, reason=form.cleaned_data["reason"]
                    )
                except CatalogError as error:
                    form.add_error(None, error.message)
                else:
                    self.message_user(request, f"Changed to {offering}.", messages.SUCCESS)
                    return redirect("admin:catalog_product_change", new.pk)
            quote = plan_change_quote(product=product, offering=offering)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change the plan of {product}",
            "form": form,
            "quote": quote,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/catalog/form.html", context)
