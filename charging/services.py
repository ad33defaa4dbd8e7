"""Writes to balances and the ledger. Each service owns its transaction."""

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from charging import live
from charging.batch_charging import (
    AllowanceShortcut,
    BatchEvent,
    BatchPosting,
    batch_events_lock,
    batch_events_mark_covered,
    batch_events_save,
)
from charging.context import LineKey, LinePath, charging_contexts, context_at, lines_with_paths
from charging.covered_batches import SharedRowsMoved, covered_batch_charge
from charging.ledger import bucket_entry, ledger_entry_create, ledger_write, money_entry, terms_of
from charging.locks import buckets_lock_by_id, lock_for_batch, money_balance_lock, usage_event_lock
from charging.models import (
    Bucket,
    BucketDefinition,
    LedgerEntry,
    LineRatePlan,
    MoneyBalance,
    NodeLimit,
    RatePlan,
    UsageEvent,
    UsageEventReplay,
)
from charging.requests import ChargingError
from charging.settlement import charge_used, locked_save
from charging.thresholds import thresholds_check
from charging.usage_records import BatchLine, usage_record_parse
from enterprise.models import CostCentre
from portal.audit import audit_record
from portal.db.profile_epoch import profiles_forget
from portal.models import BillingAccount, Line
from portal.money import format_money, money
from portal.task_queue import task_queue_on_commit

CHARGE_USAGE_EVENT = "charging.tasks.charge_usage_event"

EXTERNAL_ID_MAX_LENGTH = UsageEvent._meta.get_field("external_id").max_length


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


def usage_event_ingest(*, payload: dict, source: str = "mediation") -> tuple[UsageEvent, bool]:
    """Stores a usage record once and queues its charge; a repeat returns the stored event.

    Returns ``(event, created)``. A record that fails its checks is stored as rejected with
    the reason per field (in ``event.reason``) and charges nothing.
    """
    event, created = usage_event_store(payload=payload, source=source)
    if created and event.status == UsageEvent.Status.RECEIVED:
        task_queue_on_commit(CHARGE_USAGE_EVENT, event.pk)
    return event, created


def usage_event_store(*, payload: dict, source: str) -> tuple[UsageEvent, bool]:
    """Stores a usage record once without charging it (the caller queues the charge).

    Returns ``(event, created)``; a repeat of (source, external id) returns the stored event.
    """
    external_id = usage_event_external_id(payload)
    if external_id is not None:
        existing = UsageEvent.objects.filter(source=source, external_id=external_id).first()
        if existing is not None:
            return existing, False
    event = usage_event_build(payload=payload, source=source)
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:
        # Delivered twice at once: the other delivery stored it first, and its answer stands.
        return UsageEvent.objects.get(source=source, external_id=event.external_id), False
    return event, True


def usage_event_external_id(payload: dict) -> str | None:
    """The record's own id if it can key the event; ``None`` if it must be kept under a made-up one."""
    external_id = payload.get("external_id")
    if isinstance(external_id, str) and external_id and len(external_id) <= EXTERNAL_ID_MAX_LENGTH:
        return external_id
    return None


def usage_event_build(*, payload: dict, source: str) -> UsageEvent:
    """Checks a record and returns its (unsaved) event: received, or rejected with the reasons."""
    return UsageEvent(**usage_event_fields(payload=payload, source=source))


def usage_event_fields(
    *, payload: dict, source: str, lines: dict[str, BatchLine] | None = None, now: datetime | None = None
) -> dict:
    """Checks a record and returns the fields of its event (by attribute name: ``line_id``);
    ``lines``: a batch's lines (``lines_by_msisdn``); ``now``: when a batch was received, the
    time of records that carry none."""
    record, errors = usage_record_parse(payload, lines=lines, now=now)
    fields = {
        "source": source,
        "payload": payload,
        "external_id": usage_event_external_id(payload) or f"missing:{uuid.uuid4()}",
    }
    if record is None:
        fields.update(
            status=UsageEvent.Status.REJECTED,
            reason=_format_errors(errors),
            errors=errors,
            msisdn=str(payload.get("msisdn") or "")[:20],
        )
    else:
        fields.update(
            msisdn=record.msisdn,
            line_id=record.line.pk,
            service=record.service,
            zone=record.zone,
            unit=record.unit,
            quantity=record.quantity,
            occurred_at=record.occurred_at,
        )
    return fields


def _format_errors(errors: dict[str, str]) -> str:
    return "; ".join(f"{field}: {reason}" for field, reason in errors.items())


def usage_event_charge(*, event_id: int) -> UsageEvent:
    """Charges one received usage record (see ``usage_events_charge``)."""
    usage_events_charge(event_ids=[event_id])
    return UsageEvent.objects.get(pk=event_id)


@transaction.atomic
def usage_events_charge(*, event_ids: list[int]) -> int:
    """Charges a batch of received usage records in one transaction; returns how many.

    Usage that happened is charged whole: allowances first (the line's own, then the pools
    of its cost centres, by priority and soonest expiry), then money, even past what may be
    spent; it counts against every limit on the line's path (in the period it happened in;
    a record of a period already closed counts in none), with the excess over a limit priced
    by its policy. Who pays (BYOD steering) is decided by each record's own time. Every row
    the batch touches is locked once, in the global order, and written back once, and the
    ledger gets one usage entry per balance, reason and day (``BatchPosting``). An event
    already charged or rejected is skipped, so a re-delivered batch changes nothing.

    A batch the allowances cover is charged with the rows its lines share locked last
    (``charging.covered_batches``), so batches of different lines charge side by side; any other
    batch, or one whose shared rows moved meanwhile, with every row locked first.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            events = batch_events_mark_covered(event_ids=event_ids, now=now)
            lines, paths = _lines_of(events)
            if events:
                covered_batch_charge(events=events, paths=paths, queued=event_ids, now=now)
    except SharedRowsMoved:
        # Rolled back: the records are as they were before the attempt (the lines, still read).
        events = batch_events_lock(event_ids=event_ids)
        _batch_charge_all_locked(events=events, lines=lines, paths=paths, queued=event_ids, now=now)
    if events:
        live.changed_on_commit(
            line_ids=lines,
            node_ids=[node for path in paths.values() for node in path.node_ids[:-1]],
            line_accounts={pk: line.billing_account_id for pk, line in lines.items()},
        )
    return len(events)


def _lines_of(events: list[BatchEvent]) -> tuple[dict[int, LineKey], dict[int, LinePath]]:
    """The batch's lines (key and account) and their paths in the cost-centre tree."""
    if not events:
        return {}, {}
    return lines_with_paths(line_ids={e.line_id for e in events})


def _batch_charge_all_locked(
    *,
    events: list[BatchEvent],
    lines: dict[int, LineKey],
    paths: dict[int, LinePath],
    queued: list[int],
    now: datetime,
) -> None:
    """Charges a batch with every row it may touch locked first: any record, the full plan
    for those the allowance shortcut does not cover."""
    keys = sorted({(e.line_id, e.service, e.zone) for e in events})
    first = min(e.occurred_at for e in events)
    requests = [(lines[line], service, zone, first) for line, service, zone in keys]
    contexts = dict(zip(keys, charging_contexts(requests=requests, paths=paths), strict=True))
    locked = lock_for_batch(ctxs=list(contexts.values()), at=now)
    shortcuts = {key: AllowanceShortcut.of_context(ctx=ctx, locked=locked) for key, ctx in contexts.items()}
    posting = BatchPosting(events, queued=queued)
    used_in_batch: dict[tuple[int, str], int] = {}  # earlier records of the batch count towards volume tiers
    for event in sorted(events, key=lambda e: (e.occurred_at, e.pk)):
        key = (event.line_id, event.service, event.zone)
        earlier = used_in_batch.get((event.line_id, event.service), 0)
        used_in_batch[(event.line_id, event.service)] = earlier + event.quantity
        if not shortcuts[key].charge(event, posting):
            ctx = context_at(contexts[key], event.occurred_at)
            ctx = replace(ctx, period_used=ctx.period_used + earlier)
            settled = charge_used(
                ctx=ctx, locked=locked, used=event.quantity, reference=event.reference, usage_event_id=event.pk
            )
            for entry in locked.ledger:
                posting.add_entry(entry)
            locked.ledger.clear()
            event.units_from_buckets = settled.from_allowances
            event.amount_charged = settled.amount
        event.status = UsageEvent.Status.CHARGED
        event.charged_at = now
        event.ledger_reference = posting.reference
    locked_save(locked)
    posting.save()
    batch_events_save(events)
    at = max(e.occurred_at for e in events)
    thresholds_check(buckets=locked.buckets.values(), limits=locked.limits, at=at)


def usage_event_replay(*, event: UsageEvent, actor, reason: str = "") -> UsageEvent:
    """Checks a rejected record again (after its cause was fixed) and charges it if it passes.
    Each replay is kept with who asked for it, why, and what came of it."""
    with transaction.atomic():
        event = usage_event_lock(event_id=event.pk)
        if event.status != UsageEvent.Status.REJECTED:
            return event
        record, errors = usage_record_parse({**event.payload, "external_id": event.external_id})
        if record is None:
            event.reason = _format_errors(errors)
            event.errors = errors
            event.save(update_fields=["reason", "errors"])
            UsageEventReplay.objects.create(event=event, actor=actor, reason=reason, outcome=event.reason)
            return event
        event.line = record.line
        event.msisdn = record.msisdn
        event.service = record.service
        event.zone = record.zone
        event.unit = record.unit
        event.quantity = record.quantity
        event.occurred_at = record.occurred_at
        event.status = UsageEvent.Status.RECEIVED
        event.reason = ""
        event.errors = {}
        event.save()
        UsageEventReplay.objects.create(event=event, actor=actor, reason=reason, outcome="accepted")
        task_queue_on_commit(CHARGE_USAGE_EVENT, event.pk)
    return event
