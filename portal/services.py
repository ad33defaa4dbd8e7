"""Writes to customer accounts."""

from decimal import Decimal

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from portal.audit import audit_record
from portal.db.profile_epoch import profiles_forget
from portal.locks import line_lock
from portal.models import BillingAccount, ContactPreferences, Customer, Line, LineHold


@transaction.atomic
def customer_create(
    *,
    name: str,
    email: str = "",
    kind: str = Customer.Kind.PERSON,
    user=None,
    preferred_channel: str = ContactPreferences.Channel.EMAIL,
) -> Customer:
    customer = Customer.objects.create(name=name, email=email, kind=kind, user=user)
    ContactPreferences.objects.create(customer=customer, preferred_channel=preferred_channel, notification_email=email)
    return customer


def billing_account_open(
    *,
    customer: Customer,
    kind: str = BillingAccount.Kind.PREPAID,
    currency: str = "EUR",
    credit_limit: Decimal = Decimal(0),
    number: str | None = None,
) -> BillingAccount:
    if kind == BillingAccount.Kind.PREPAID and credit_limit:
        raise ValueError("a prepaid account has no credit limit")
    return BillingAccount.objects.create(
        customer=customer,
        kind=kind,
        currency=currency,
        credit_limit=credit_limit,
        number=number or "BA" + get_random_string(10, allowed_chars="0123456789"),
    )


def line_create(*, billing_account: BillingAccount, msisdn: str, device_label: str = "") -> Line:
    return Line.objects.create(billing_account=billing_account, msisdn=msisdn, device_label=device_label)


class HoldError(ValueError):
    """A hold that cannot be placed or lifted; nothing was changed."""


HOLD_REASON_MAX_LENGTH = LineHold._meta.get_field("reason").max_length


@transaction.atomic
def line_hold_place(*, line: Line, cause: str, reason: str, actor: AbstractBaseUser | None) -> LineHold:
    """Holds a line for ``cause``: from the commit on, the charging engine grants nothing on it
    (but see ``LineHold.causes_barring``) until the same cause is lifted. ``actor``: who placed
    it, ``None`` for the system."""
    _hold_check(cause=cause, reason=reason)
    line = line_lock(line_id=line.pk)
    before = line.standing_hold_causes()
    if cause in before:
        raise HoldError(f"line {line.msisdn} is held for {LineHold.Cause(cause).label.lower()} already")
    hold = LineHold.objects.create(line=line, cause=cause, reason=reason, placed_by=actor)
    audit_record(
        actor=actor,
        action="line_hold.place",
        target=line,
        before={"holds": before},
        after={"holds": sorted([*before, cause])},
        reason=reason,
    )
    profiles_forget()  # the quota store reads the line's profile afresh
    return hold


@transaction.atomic
def line_hold_lift(*, line: Line, cause: str, reason: str, actor: AbstractBaseUser | None) -> LineHold:
    """Lifts the hold ``cause`` placed on a line; holds of other causes stay. A terminated line
    is never lifted."""
    _hold_check(cause=cause, reason=reason)
    if cause == LineHold.Cause.TERMINATED:
        raise HoldError("a terminated line stays terminated")
    line = line_lock(line_id=line.pk)
    hold = LineHold.objects.standing().filter(line=line, cause=cause).first()
    if hold is None:
        raise HoldError(f"line {line.msisdn} has no {LineHold.Cause(cause).label.lower()} hold to lift")
    before = line.standing_hold_causes()
    hold.lifted_at = timezone.now()
    hold.lifted_by = actor
    hold.lifted_reason = reason
    hold.save(update_fields=["lifted_at", "lifted_by", "lifted_reason"])
    audit_record(
        actor=actor,
        action="line_hold.lift",
        target=line,
        before={"holds": before},
        after={"holds": [c for c in before if c != cause]},
        reason=reason,
    )
    profiles_forget()
    return hold


def _hold_check(*, cause: str, reason: str) -> None:
    if cause not in LineHold.Cause.values:
        raise HoldError(f"unknown cause {cause!r}")
    if not reason.strip():
        raise HoldError("a hold needs a reason")
    if len(reason) > HOLD_REASON_MAX_LENGTH:
        raise HoldError(f"a hold's reason has at most {HOLD_REASON_MAX_LENGTH} characters")
