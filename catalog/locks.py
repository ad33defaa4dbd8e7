"""Every row lock the catalog app takes, in one place and one order.

Tables are locked in the order cart -> voucher -> order -> item -> step -> product, rows within
a table by ascending primary key, so two services never wait on each other in a cycle. Charging's
locks (money balance, buckets) come after these: inside the charging services catalog calls,
and at checkout, which reads what the account can cover under its money balance's lock.
On SQLite ``select_for_update`` is a no-op: its IMMEDIATE transactions serialise writers.
"""

from catalog.models import FulfilmentStep, OrderItem, Product, ProductOrder, ShoppingCart, Voucher


def cart_lock(*, cart_id: int) -> ShoppingCart:
    return ShoppingCart.objects.select_for_update().get(pk=cart_id)


def voucher_lock(*, voucher_id: int) -> Voucher:
    return Voucher.objects.select_for_update().get(pk=voucher_id)


def order_lock(*, order_id: int) -> ProductOrder:
    return ProductOrder.objects.select_for_update().get(pk=order_id)


def order_items_lock(*, order_id: int) -> list[OrderItem]:
    return list(OrderItem.objects.select_for_update().filter(order_id=order_id).order_by("pk"))


def step_lock(*, step_id: int) -> FulfilmentStep:
    return FulfilmentStep.objects.select_for_update().get(pk=step_id)


def order_steps_lock(*, order_id: int) -> list[FulfilmentStep]:
    return list(FulfilmentStep.objects.select_for_update().filter(order_id=order_id).order_by("pk"))


def product_lock(*, product_id: int) -> Product:
    return Product.objects.select_for_update().get(pk=product_id)
