from django import template

from portal.money import format_money

register = template.Library()


@register.filter
def euros(amount) -> str:
    """A ledger-scale amount as people read it: rounded to cents, with its symbol."""
    return "" if amount is None else format_money(amount)
