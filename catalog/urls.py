from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.browse, name="browse"),
    path("guided/", views.guided, name="guided"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("cart/items/<int:item_id>/remove/", views.cart_remove, name="cart-remove"),
    path("cart/voucher/", views.cart_voucher, name="cart-voucher"),
    path("cart/checkout/", views.checkout, name="checkout"),
    path("orders/", views.orders, name="orders"),
    path("orders/<int:order_id>/", views.order_detail, name="order-detail"),
    path("orders/<int:order_id>/timeline/", views.order_timeline_fragment, name="order-timeline"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order-cancel"),
    path("products/", views.products, name="products"),
    path("products/<int:product_id>/change-plan/", views.product_change_plan, name="product-change-plan"),
]
