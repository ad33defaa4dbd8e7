"""Reads of customer accounts, always scoped to who is asking."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from portal.models import Customer, Line


def lines_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Line]:
    """Lines a user may see: a consumer their own; a call-centre agent every line."""
    if not user.is_authenticated:
        return Line.objects.none()
    if user.is_staff and user.has_perm("portal.view_line"):
        return Line.objects.all()
    return Line.objects.filter(billing_account__customer__user=user)


def lines_owned_by(*, user: AbstractBaseUser) -> QuerySet[Line]:
    """The lines on the user's own dashboard: a person's own lines. A company's lines are
    looked after through its cost-centre tree, not listed one by one."""
    return (
        Line.objects.filter(billing_account__customer__user=user, billing_account__customer__kind=Customer.Kind.PERSON)
        .select_related("billing_account", "billing_account__customer")
        .with_standing_holds()
        .order_by("msisdn")
    )
