"""The catalog, carts, orders with their fulfilment steps, and the installed base.

Vocabulary follows TM Forum: a product offering is what is sold (TMF620), a shopping cart
collects it (TMF663), a product order buys it (TMF622) and a product is what a customer then
has (TMF637). Prices are Decimals at the ledger's scale; charging owns tariffs and allowances,
and an offering refers to them.
"""

from catalog.models.offerings import (
    Channel,
    OfferingQuerySet,
    ProductOffering,
    Promotion,
    PromotionPhase,
    Segment,
    Voucher,
)
from catalog.models.orders import CartItem, FulfilmentStep, OrderEvent, OrderItem, ProductOrder, ShoppingCart
from catalog.models.products import Product, ProductEvent, RecurringCharge

__all__ = [
    "CartItem",
    "Channel",
    "FulfilmentStep",
    "OfferingQuerySet",
    "OrderEvent",
    "OrderItem",
    "Product",
    "ProductEvent",
    "ProductOffering",
    "ProductOrder",
    "Promotion",
    "PromotionPhase",
    "RecurringCharge",
    "Segment",
    "ShoppingCart",
    "Voucher",
]
