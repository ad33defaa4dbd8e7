"""Writes to balances and the ledger: allowances, money, limits, rate plans. Each service owns
its transaction. Usage records are stored and charged in ``charging.usage_events``."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from charging import live
from charging.ledger import bucket_entry, ledger_entry_create, ledger_write, money_entry, terms_of
from charging.locks import buckets_lock_by_id, money_balance_lock
from charging.models import (
    Bucket,
    BucketDefinition,
    LedgerEntry,
    LineRatePlan,
    MoneyBalance,
    NodeLimit,
    RatePlan,
)
from charging.requests import ChargingError
from enterprise.models import CostCentre
from portal.audit import audit_record
from portal.db.profile_epoch import profiles_forget
from portal.models import BillingAccount, Line
from portal.money import format_money, money


def money_balance_open(*, billing_account: BillingAccount) -> MoneyBalance:
    balance, _ = MoneyBalance.objects.get_or_create(billing_account=billing_account)
    return balance


@transaction.atomic
def bucket_grant(
    *,
    line: Line | None = None,
    cost_centre: CostCentre | None = None,
    name: str,
    unit: str,
    quantity: int,
    valid_until: datetime | None = None,
    priority: int = 100,
    definition: BucketDefinition | None = None,
    reason: str = "",
    reference: str = "",
    actor=None,
) -> Bucket:
    """Gives a line, or a cost centre's pool, a new allowance; the grant is the bucket's first
    ledger entry. A pool is paid for by the company's account and shared below its node."""
    if quantity <= 0:
        raise ValueError("an allowance must be positive")
    if (line is None) == (cost_centre is None):
        raise ValueError("an allowance belongs to a line or to a cost centre")
    if line is not None:
        account_id = line.billing_account_id
    else:
        account_id = BillingAccount.objects.filter(customer__company__pk=cost_centre.company_id).order_by("pk")[0].pk
    bucket = Bucket.objects.create(
        line=line,
        cost_centre=cost_centre,
        billing_account_id=account_id,
        definition=definition,
        name=name,
        unit=unit,
        initial=quantity,
        remaining=quantity,
        priority=priority,
        valid_until=valid_until,
    )
    grant = bucket_entry(
        bucket=bucket,
        kind=LedgerEntry.Kind.GRANT,
        units=quantity,
        reason=reason or f"{name} granted",
        reference=reference,
        actor_id=actor.pk if actor else None,
        terms=terms_of(bucket),
    )
    ledger_write([grant])
    if line is not None:
        live.line_changed_on_commit(line_id=line.pk)
    profiles_forget()
    return bucket


def bucket_grant_from_definition(
    *, line: Line, definition: BucketDefinition, reference: str = "", reason: str = "", actor=None
) -> Bucket:
    """Grants what an offering's allowance promises, valid from now for its validity period."""
    valid_until = None
    if definition.validity_days:
        valid_until = timezone.now() + timedelta(days=definition.validity_days)
    return bucket_grant(
        line=line,
        name=definition.name,
        unit=definition.unit,
        quantity=definition.quantity,
        valid_until=valid_until,
        priority=definition.priority,
        definition=definition,
        reason=reason or f"{definition.name} granted",
        reference=reference,
        actor=actor,
    )


def bucket_validity_change(*, bucket: Bucket, valid_until: datetime, reason: str, actor) -> Bucket:
    """An agent moves the end of an allowance's validity (extends it as a goodwill gesture,
    or ends it early); the ledger records the new terms with the reason and the agent."""
    return _bucket_terms_change(bucket=bucket, changes={"valid_until": valid_until}, reason=reason, actor=actor)


def bucket_priority_change(*, bucket: Bucket, priority: int, reason: str, actor) -> Bucket:
    """An agent changes which allowance is drawn from first (lower first); recorded like a
    change of validity."""
    if priority < 0:
        raise ChargingError("invalid_priority", "a priority is a whole number from 0", field="priority")
    return _bucket_terms_change(bucket=bucket, changes={"priority": priority}, reason=reason, actor=actor)


@transaction.atomic
def _bucket_terms_change(*, bucket: Bucket, changes: dict, reason: str, actor) -> Bucket:
    if not reason.strip():
        raise ChargingError("reason_required", "say why the allowance changes", field="reason")
    bucket = buckets_lock_by_id(bucket_ids={bucket.pk})[bucket.pk]
    changes = {name: value for name, value in changes.items() if getattr(bucket, name) != value}
    if not changes:
        return bucket  # already so: nothing to record
    before = {name: getattr(bucket, name) for name in changes}
    for name, value in changes.items():
        setattr(bucket, name, value)
    if bucket.valid_until is not None and bucket.valid_until <= bucket.valid_from:
        raise ChargingError("invalid_validity", "an allowance must end after it starts", field="valid_until")
    Bucket.objects.filter(pk=bucket.pk).update(**changes)
    entry = bucket_entry(
        bucket=bucket,
        kind=LedgerEntry.Kind.TERMS,
        units=0,
        reason=reason,
        actor_id=actor.pk if actor else None,
        terms=terms_of(bucket),
    )
    ledger_write([entry])
    audit_record(actor=actor, action="bucket.terms", target=bucket, before=before, after=changes, reason=reason)
    profiles_forget()  # an allowance's validity and priority are part of its line's profile
    if bucket.line_id is not None:
        live.line_changed_on_commit(line_id=bucket.line_id)
    return bucket


@transaction.atomic
def line_rate_plan_assign(*, line: Line, rate_plan: RatePlan, reference: str = "") -> LineRatePlan:
    """Puts a line on a rate plan (its tariffs apply to usage from now on)."""
    assignment, _ = LineRatePlan.objects.update_or_create(
        line=line, defaults={"rate_plan": rate_plan, "reference": reference, "assigned_at": timezone.now()}
    )
    profiles_forget()
    return assignment


@transaction.atomic
def node_limit_set(*, node: CostCentre, unit: str, limit: int, **terms) -> NodeLimit:
    """Sets a cost centre's limit of one unit (``terms``: period, on_exceed, overage price,
    thresholds), creating it if the node has none; what it has used so far stays counted."""
    node_limit, _ = NodeLimit.objects.update_or_create(node=node, unit=unit, defaults={"limit": limit, **terms})
    profiles_forget()  # the limits on a line's path are part of its profile
    live.changed_on_commit(node_ids=[node.pk])
    return node_limit


@transaction.atomic
def money_post(
    *,
    billing_account: BillingAccount,
    amount: Decimal,
    kind: str,
    reason: str,
    reference: str = "",
    actor=None,
) -> LedgerEntry:
    """Moves an account's money balance by ``amount`` (negative for a charge) with its ledger row."""
    amount = money(amount)
    money_balance_open(billing_account=billing_account)
    balance = money_balance_lock(billing_account_id=billing_account.pk)
    MoneyBalance.objects.filter(pk=balance.pk).update(amount=F("amount") + amount)
    entry = ledger_entry_create(
        money_entry(
            balance=balance,
            kind=kind,
            amount=amount,
            reason=reason,
            reference=reference,
            actor_id=actor.pk if actor else None,
        )
    )
    live.changed_on_commit(account_ids=[billing_account.pk])
    return entry


@transaction.atomic
def money_adjust(*, billing_account: BillingAccount, amount: Decimal, reason: str, actor) -> LedgerEntry:
    """An agent's credit (positive) or debit (negative) of an account's money, with the reason
    and the agent in the ledger and in the audit trail; no larger either way than
    ``CHARGING_MAX_ADJUSTMENT``."""
    if not reason.strip():
        raise ValueError("an adjustment needs a reason")
    most = money(settings.CHARGING_MAX_ADJUSTMENT)
    if abs(money(amount)) > most:
        raise ChargingError(
            "adjustment_too_large",
            f"one adjustment may move at most {format_money(most, billing_account.currency)}",
            field="amount",
        )
    kind = LedgerEntry.Kind.ADJUSTMENT
    entry = money_post(billing_account=billing_account, amount=amount, kind=kind, reason=reason, actor=actor)
    # The balance stays locked by money_post until commit, so the one before is exact.
    after = MoneyBalance.objects.values_list("amount", flat=True).get(pk=entry.money_balance_id)
    audit_record(
        actor=actor,
        action="money.adjust",
        target=billing_account,
        before={"balance": after - entry.amount},
        after={"balance": after},
        reason=reason,
    )
    return entry
