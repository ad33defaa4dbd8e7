"""Reads of customer accounts, always scoped to who is asking.

Who may see which line is answered once per role: a consumer here (their own person
accounts' lines), an agent here (what their group's permissions allow), a telecom manager in
``enterprise.selectors`` (the subtrees assigned to them), which also answers for every role
at once (``lines_visible_to``): pages and sockets ask that.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from portal.models import Customer, Line


def lines_owned_by(*, user: AbstractBaseUser) -> QuerySet[Line]:
    """A consumer's own lines, on their dashboard: those of the person customers whose login
    they are. A company's lines are seen through its cost-centre tree, by the managers
    assigned to its nodes, not by whoever holds the company's login."""
    return (
        Line.objects.filter(billing_account__customer__user=user, billing_account__customer__kind=Customer.Kind.PERSON)
        .select_related("billing_account", "billing_account__customer")
        .with_standing_holds()
        .order_by("msisdn")
    )


def agent_sees_every_line(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """A call-centre agent whose group allows viewing lines sees every line."""
    return user.is_authenticated and user.is_staff and user.has_perm("portal.view_line")
