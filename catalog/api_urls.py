from django.urls import path
from rest_framework.routers import SimpleRouter

from catalog import api

router = SimpleRouter()
router.register("productOffering", api.ProductOfferingViewSet, basename="productoffering")
router.register("product", api.ProductViewSet, basename="product")

urlpatterns = [
    path("shoppingCart/", api.ShoppingCartListView.as_view(), name="shoppingcart-list"),
    path("shoppingCart/<int:cart_id>/", api.ShoppingCartDetailView.as_view(), name="shoppingcart-detail"),
    path("shoppingCart/<int:cart_id>/cartItem/", api.CartItemCreateView.as_view(), name="cartitem-create"),
    path(
        "shoppingCart/<int:cart_id>/cartItem/<int:item_id>/", api.CartItemDeleteView.as_view(), name="cartitem-delete"
    ),
    path("shoppingCart/<int:cart_id>/voucher/", api.CartVoucherView.as_view(), name="shoppingcart-voucher"),
    path("productOrder/", api.ProductOrderListView.as_view(), name="productorder-list"),
    path("productOrder/<int:order_id>/", api.ProductOrderDetailView.as_view(), name="productorder-detail"),
    path("productOrder/<int:order_id>/cancel/", api.ProductOrderCancelView.as_view(), name="productorder-cancel"),
    *router.urls,
]
