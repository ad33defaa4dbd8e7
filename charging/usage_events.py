"""Usage records one by one and in batches: stored once (a bad one kept rejected with its
reasons), charged once, replayed by an agent. Each service owns its transaction."""

import uuid
from dataclasses import replace
from datetime import datetime

from django.db import IntegrityError, transaction
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
from charging.locks import lock_for_batch, usage_event_lock
from charging.models import (
    UsageEvent,
    UsageEventReplay,
)
from charging.settlement import charge_used, locked_save
from charging.thresholds import thresholds_check
from charging.usage_records import BatchLine, usage_record_parse
from portal.task_queue import task_queue_on_commit

CHARGE_USAGE_EVENT = "charging.tasks.charge_usage_event"

EXTERNAL_ID_MAX_LENGTH = UsageEvent._meta.get_field("external_id").max_length


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
