"""REST endpoints of the catalog in TM Forum vocabulary: productOffering (TMF620), shoppingCart
(TMF663), productOrder (TMF622) and product (TMF637).

Every call is scoped to the caller's own customer: another customer's cart, order or product
answers 404. A refusal answers 400 with the field and the reason, and a stable ``code``.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.errors import CatalogError
from catalog.models import Channel, FulfilmentStep, OrderItem, Product, ProductOffering, ProductOrder, ShoppingCart
from catalog.selectors import (
    cart_summary,
    carts_visible_to,
    customer_of,
    offerings_for_sale,
    orders_visible_to,
    products_visible_to,
    segment_of,
)
from catalog.services import cart_item_add, cart_item_remove, cart_open, cart_voucher_apply, order_cancel, order_place
from portal.api.errors import ErrorSerializer
from portal.api.fields import MAX_ID, WholeNumberField
from portal.models import Customer, Line

# --- Serializers -----------------------------------------------------------------------------


class AllowanceSerializer(serializers.Serializer):
    name = serializers.CharField()
    unit = serializers.CharField()
    quantity = serializers.IntegerField()
    validity_days = serializers.IntegerField(allow_null=True)


class ProductOfferingSerializer(serializers.ModelSerializer):
    allowances = AllowanceSerializer(many=True, read_only=True)
    rate_plan = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    promotions = serializers.SerializerMethodField()

    class Meta:
        model = ProductOffering
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "description",
            "one_off_price",
            "recurring_price",
            "rate_plan",
            "allowances",
            "contract_months",
            "segment",
            "valid_from",
            "valid_until",
            "promotions",
        ]

    def get_promotions(self, offering) -> list[str]:
        return [promotion.name for promotion in getattr(offering, "active_promotions", [])]


class CartItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="item_id")
    offering = serializers.IntegerField(source="offering.pk")
    name = serializers.CharField(source="offering.name")
    kind = serializers.CharField(source="offering.kind")
    line = serializers.CharField(source="line_msisdn")
    today = serializers.DecimalField(max_digits=18, decimal_places=4)
    monthly = serializers.DecimalField(max_digits=18, decimal_places=4)
    term_total = serializers.DecimalField(max_digits=18, decimal_places=4)
    promotion = serializers.CharField(source="label")


class ShoppingCartSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    started_channel = serializers.CharField()
    voucher = serializers.CharField(source="voucher.code", default="")
    items = CartItemSerializer(many=True, source="summary.items")
    today = serializers.DecimalField(max_digits=18, decimal_places=4, source="summary.today")
    monthly = serializers.DecimalField(max_digits=18, decimal_places=4, source="summary.monthly")
    term_months = serializers.IntegerField(source="summary.term_months")
    term_total = serializers.DecimalField(max_digits=18, decimal_places=4, source="summary.term_total")


class CartItemInputSerializer(serializers.Serializer):
    offering = WholeNumberField(min_value=1, max_value=MAX_ID)
    parent = WholeNumberField(
        required=False, min_value=1, max_value=MAX_ID, help_text="The cart item this one goes with."
    )
    line = WholeNumberField(required=False, min_value=1, max_value=MAX_ID, help_text="An add-on's line.")


class VoucherInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)


class FulfilmentStepSerializer(serializers.ModelSerializer):
    item = serializers.IntegerField(source="item_id")

    class Meta:
        model = FulfilmentStep
        fields = ["id", "item", "kind", "state", "attempts", "partner_reference", "started_at", "finished_at"]


class OrderItemSerializer(serializers.ModelSerializer):
    offering = serializers.IntegerField(source="offering_id")
    name = serializers.CharField(source="offering.name")
    promotion = serializers.CharField(source="promotion.name", default="")

    class Meta:
        model = OrderItem
        fields = ["id", "offering", "name", "state", "state_reason", "one_off_price", "recurring_price", "promotion"]


class ProductOrderSerializer(serializers.ModelSerializer):
    items = OrderItemSerializer(many=True, read_only=True)
    steps = FulfilmentStepSerializer(many=True, read_only=True)
    placed_by = serializers.CharField(source="placed_by.get_username")

    class Meta:
        model = ProductOrder
        fields = [
            "id",
            "state",
            "state_reason",
            "channel",
            "placed_by",
            "billing_account",
            "due_today",
            "monthly",
            "term_total",
            "created_at",
            "completed_at",
            "items",
            "steps",
        ]


class ProductOrderInputSerializer(serializers.Serializer):
    cart = WholeNumberField(min_value=1, max_value=MAX_ID)
    billing_account = WholeNumberField(required=False, min_value=1, max_value=MAX_ID)


class CancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class ProductSerializer(serializers.ModelSerializer):
    offering = serializers.IntegerField(source="offering_id")
    name = serializers.CharField(source="offering.name")
    line = serializers.CharField(source="line.msisdn", default="")

    class Meta:
        model = Product
        fields = [
            "id",
            "offering",
            "name",
            "status",
            "line",
            "recurring_price",
            "contract_months",
            "started_at",
            "contract_ends_at",
            "terminated_at",
        ]


# --- Scope and answers ---------------------------------------------------------------------


def _customer(request) -> Customer:
    customer = customer_of(user=request.user)
    if customer is None:
        raise NotFound("no customer account for this login")
    return customer


def _refused(error: CatalogError) -> Response:
    return Response(error.as_error(), status=status.HTTP_400_BAD_REQUEST)


def _cart_body(cart: ShoppingCart) -> dict:
    cart.summary = cart_summary(cart=cart)
    return ShoppingCartSerializer(cart).data


def _own_cart(request, cart_id: int) -> ShoppingCart:
    cart = carts_visible_to(user=request.user).select_related("customer", "voucher").filter(pk=cart_id).first()
    if cart is None:
        raise NotFound()
    return cart


# --- productOffering -------------------------------------------------------------------------


class OfferingQuerySerializer(serializers.Serializer):
    """The offerings' filters; a malformed one answers 400 naming it."""

    kind = serializers.ChoiceField(choices=ProductOffering.Kind.choices, required=False)
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Words in the name or description."
    )
    compatibleWith = WholeNumberField(  # noqa: N815 (the query parameter's TMF-style name)
        required=False, min_value=1, max_value=MAX_ID, help_text="Plans a handset can be sold with."
    )
    fits = WholeNumberField(required=False, min_value=1, max_value=MAX_ID, help_text="Accessories that fit a handset.")


@extend_schema(parameters=[OfferingQuerySerializer])
class ProductOfferingViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProductOfferingSerializer
    queryset = ProductOffering.objects.none()

    def get_queryset(self):
        customer = customer_of(user=self.request.user)
        segment = segment_of(customer) if customer else "consumer"
        # A plain dict: a QueryDict's empty value would count as no value, and ?kind= pass.
        query = OfferingQuerySerializer(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        offerings = offerings_for_sale(
            segment=segment, channel=Channel.WEB, kind=params.get("kind") or None, search=params.get("q", "")
        )
        if "compatibleWith" in params:
            offerings = offerings.filter(compatible_handsets=params["compatibleWith"])
        if "fits" in params:
            offerings = offerings.filter(fits_handsets=params["fits"])
        return offerings


# --- shoppingCart ----------------------------------------------------------------------------


class ShoppingCartListView(APIView):
    @extend_schema(operation_id="shoppingCart_list", responses=ShoppingCartSerializer(many=True))
    def get(self, request):
        carts = carts_visible_to(user=request.user).select_related("customer", "voucher")
        return Response([_cart_body(cart) for cart in carts])

    @extend_schema(
        operation_id="shoppingCart_create",
        request=None,
        responses={
            201: ShoppingCartSerializer,
            200: ShoppingCartSerializer,
            404: OpenApiResponse(ErrorSerializer, description="The login is no customer's: no cart to open."),
        },
        description="The caller's open cart; started now if there is none.",
    )
    def post(self, request):
        customer = _customer(request)
        existed = carts_visible_to(user=request.user).filter(status=ShoppingCart.Status.OPEN).exists()
        cart = cart_open(customer=customer, channel=Channel.WEB, actor=request.user)
        return Response(_cart_body(cart), status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class ShoppingCartDetailView(APIView):
    @extend_schema(operation_id="shoppingCart_retrieve", responses=ShoppingCartSerializer)
    def get(self, request, cart_id: int):
        return Response(_cart_body(_own_cart(request, cart_id)))


class CartItemCreateView(APIView):
    @extend_schema(
        operation_id="shoppingCart_cartItem_create",
        request=CartItemInputSerializer,
        responses={201: ShoppingCartSerializer},
    )
    def post(self, request, cart_id: int):
        cart = _own_cart(request, cart_id)
        data = CartItemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        offering = ProductOffering.objects.filter(pk=data.validated_data["offering"]).first()
        if offering is None:
            return _refused(CatalogError("no such offering", code="unknown_offering", field="offering"))
        parent = None
        if "parent" in data.validated_data:
            parent = cart.items.select_related("offering").filter(pk=data.validated_data["parent"]).first()
            if parent is None:
                return _refused(CatalogError("no such item in this cart", code="unknown_item", field="parent"))
        line = None
        if "line" in data.validated_data:
            line = Line.objects.filter(pk=data.validated_data["line"], billing_account__customer=cart.customer).first()
            if line is None:
                return _refused(CatalogError("no such line", code="unknown_line", field="line"))
        try:
            cart_item_add(cart=cart, offering=offering, channel=Channel.WEB, parent=parent, line=line)
        except CatalogError as error:
            return _refused(error)
        return Response(_cart_body(cart), status=status.HTTP_201_CREATED)


class CartItemDeleteView(APIView):
    @extend_schema(operation_id="shoppingCart_cartItem_delete", request=None, responses={200: ShoppingCartSerializer})
    def delete(self, request, cart_id: int, item_id: int):
        cart = _own_cart(request, cart_id)
        try:
            cart_item_remove(cart=cart, item_id=item_id)
        except CatalogError as error:
            if error.code == "unknown_item":
                raise NotFound() from error
            return _refused(error)
        return Response(_cart_body(cart))


class CartVoucherView(APIView):
    @extend_schema(
        operation_id="shoppingCart_voucher_apply", request=VoucherInputSerializer, responses=ShoppingCartSerializer
    )
    def post(self, request, cart_id: int):
        cart = _own_cart(request, cart_id)
        data = VoucherInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            cart = cart_voucher_apply(cart=cart, code=data.validated_data["code"])
        except CatalogError as error:
            return _refused(error)
        return Response(_cart_body(cart))


# --- productOrder ----------------------------------------------------------------------------


def _order_queryset(request):
    return (
        orders_visible_to(user=request.user)
        .select_related("placed_by")
        .prefetch_related("items__offering", "items__promotion", "steps")
    )


class ProductOrderListView(APIView):
    @extend_schema(operation_id="productOrder_list", responses=ProductOrderSerializer(many=True))
    def get(self, request):
        return Response(ProductOrderSerializer(_order_queryset(request)[:50], many=True).data)

    @extend_schema(
        operation_id="productOrder_create", request=ProductOrderInputSerializer, responses={201: ProductOrderSerializer}
    )
    def post(self, request):
        data = ProductOrderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cart = carts_visible_to(user=request.user).filter(pk=data.validated_data["cart"]).first()
        if cart is None:
            return _refused(CatalogError("no such cart", code="unknown_cart", field="cart"))
        account = None
        if "billing_account" in data.validated_data:
            account = cart.customer.billing_accounts.filter(pk=data.validated_data["billing_account"]).first()
            if account is None:
                return _refused(
                    CatalogError("no such billing account", code="unknown_billing_account", field="billing_account")
                )
        try:
            order = order_place(cart=cart, placed_by=request.user, channel=Channel.WEB, billing_account=account)
        except CatalogError as error:
            return _refused(error)
        return Response(ProductOrderSerializer(_order_queryset(request).get(pk=order.pk)).data, status=201)


class ProductOrderDetailView(APIView):
    @extend_schema(operation_id="productOrder_retrieve", responses=ProductOrderSerializer)
    def get(self, request, order_id: int):
        order = _order_queryset(request).filter(pk=order_id).first()
        if order is None:
            raise NotFound()
        return Response(ProductOrderSerializer(order).data)


class ProductOrderCancelView(APIView):
    @extend_schema(operation_id="productOrder_cancel", request=CancelInputSerializer, responses=ProductOrderSerializer)
    def post(self, request, order_id: int):
        order = orders_visible_to(user=request.user).filter(pk=order_id).first()
        if order is None:
            raise NotFound()
        data = CancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            order_cancel(order=order, reason=data.validated_data["reason"], actor=request.user)
        except CatalogError as error:
            return _refused(error)
        return Response(ProductOrderSerializer(_order_queryset(request).get(pk=order.pk)).data)


# --- product ---------------------------------------------------------------------------------


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.none()

    def get_queryset(self):
        return products_visible_to(user=self.request.user).select_related("offering", "line")
