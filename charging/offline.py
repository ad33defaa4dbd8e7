"""Offline usage: files and bulk posts of records, stored together and charged in batches.

Every record goes through the same checks as a single one (``usage_event_fields``) and is kept,
rejected with its reasons if it fails them. Records already stored under the same source and
external id are answered with the stored event and never charged again. The accepted ones are
charged after commit by ``charge_usage_batch`` tasks of ``CHARGING_BATCH_SIZE`` events each;
records whose task was lost are queued again by a periodic sweep (``usage_events_requeue``).
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from charging.locks import usage_charge_sweep_lock
from charging.models import UsageEvent, UsageQueueBacklog
from charging.usage_events import usage_event_fields, usage_event_store
from charging.usage_records import lines_by_msisdn
from portal.db.rows import rows_insert
from portal.task_queue import task_queue


class RecordStatus:
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class RecordOutcome(NamedTuple):  # cheap to make: a batch answers for thousands of records
    index: int  # position in the batch
    external_id: str  # as sent ("" when missing or not a string)
    status: str  # a RecordStatus
    event_id: int
    event_status: str  # the stored event's status (for a duplicate: the first answer's)
    errors: dict[str, str]  # the reason per field of a rejected record


@dataclass
class BatchResult:
    outcomes: list[RecordOutcome] = field(default_factory=list)

    def _count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def accepted(self) -> int:
        return self._count(RecordStatus.ACCEPTED)

    @property
    def duplicate(self) -> int:
        return self._count(RecordStatus.DUPLICATE)

    @property
    def rejected(self) -> int:
        return self._count(RecordStatus.REJECTED)


def charging_batch_size() -> int:
    return settings.CHARGING_BATCH_SIZE  # the one default is in the settings


CHARGE_USAGE_BATCH = "charging.tasks.charge_usage_batch"
# What publishing a task raises when the broker cannot be reached (Redis as the broker).
BROKER_ERRORS = (KombuOperationalError, RedisError, OSError)
logger = logging.getLogger(__name__)

DEADLOCK_RETRIES = 3
DEADLOCK_DETECTED = "40P01"  # PostgreSQL's error code


def usage_batch_ingest(*, payloads: list[dict], source: str) -> BatchResult:
    """Stores a batch of usage records and, after commit, queues the accepted ones for charging.

    Two deliveries of the same records at once, in different orders, can each wait on a record
    the other inserted first; PostgreSQL ends one of them, and it is stored again from the start
    (it then finds the other's records stored and answers them as duplicates).
    """
    for attempt in range(DEADLOCK_RETRIES):
        try:
            return _batch_ingest(payloads=payloads, source=source)
        except OperationalError as error:
            if getattr(error.__cause__, "pgcode", None) != DEADLOCK_DETECTED or attempt == DEADLOCK_RETRIES - 1:
                raise
    raise AssertionError("the last attempt returns or raises")


def _batch_ingest(*, payloads: list[dict], source: str) -> BatchResult:
    """Stores a batch of usage records and, after commit, queues the accepted ones for charging.

    A batch of new records, nearly every one, is stored in one insert with no look-up first.
    If the insert meets a record stored before (a batch delivered again), it is rolled back,
    the stored records are looked up and answered with, and the others are stored; if a
    concurrent delivery stored a twin meanwhile, row by row, where the twin's answer stands.
    A record repeated within the batch counts once.
    """
    outcomes: list[RecordOutcome | None] = [None] * len(payloads)
    with transaction.atomic():
        lines = lines_by_msisdn(payloads)
        now = timezone.now()
        new: dict[str, tuple[int, dict]] = {}  # event external id -> (index, the event's fields)
        repeats: list[tuple[int, str]] = []  # (index, external id of an earlier record in this batch)
        for index, payload in enumerate(payloads):
            fields = usage_event_fields(payload=payload, source=source, lines=lines, now=now)
            if fields["external_id"] in new:
                repeats.append((index, fields["external_id"]))
            else:
                new[fields["external_id"]] = (index, fields)

        # Where each repeated record first came (read before a re-delivery's stored ones leave ``new``).
        first = {external_id: new[external_id][0] for _, external_id in repeats}
        try:
            with transaction.atomic():
                created = _rows_store(new)
        except IntegrityError:
            for external_id, event in _stored_events(source=source, external_ids=list(new)).items():
                index, _ = new.pop(external_id)
                outcomes[index] = _outcome(
                    index, payloads[index], event.pk, event.status, event.errors, RecordStatus.DUPLICATE
                )
            created = _bulk_store(source=source, payloads=payloads, new=new)

        rejected = UsageEvent.Status.REJECTED.value  # looked up once, not per record
        for index, event, was_created in created.values():
            if not was_created:
                status = RecordStatus.DUPLICATE
            elif event.status == rejected:
                status = RecordStatus.REJECTED
            else:
                status = RecordStatus.ACCEPTED
            outcomes[index] = _outcome(index, payloads[index], event.pk, event.status, event.errors, status)
        for index, external_id in repeats:
            outcomes[index] = outcomes[first[external_id]]._replace(index=index, status=RecordStatus.DUPLICATE)

        _charge_after_commit([o.event_id for o in outcomes if o.status == RecordStatus.ACCEPTED])
    return BatchResult(outcomes=outcomes)


def _stored_events(*, source: str, external_ids: list[str]) -> dict[str, UsageEvent]:
    if not external_ids:
        return {}
    rows = (
        UsageEvent.objects.filter(source=source, external_id__any=external_ids)
        .only("pk", "external_id", "status", "errors")
        .order_by()  # in no order: a dictionary is made of them
    )
    return {event.external_id: event for event in rows}


class _Stored(NamedTuple):
    pk: int
    status: str
    errors: dict


# What a batch stores of each event; the other columns take their defaults.
_STORED_FIELDS = (
    "source",
    "external_id",
    "payload",
    "msisdn",
    "line_id",
    "service",
    "zone",
    "unit",
    "quantity",
    "occurred_at",
    "status",
    "reason",
    "errors",
)
_FIELD_DEFAULTS = {name: UsageEvent._meta.get_field(name).get_default() for name in _STORED_FIELDS}
_ROW_VALUES = itemgetter(*_STORED_FIELDS)


def _row(fields: dict) -> tuple:
    return _ROW_VALUES({**_FIELD_DEFAULTS, **fields})


def _rows_store(new: dict[str, tuple[int, dict]]) -> dict[str, tuple[int, _Stored, bool]]:
    """Inserts the new events in one statement; returns, per key, (index, the stored event,
    ``True``: created). Raises ``IntegrityError`` if one of them was stored before."""
    if not new:
        return {}
    pks = rows_insert(UsageEvent, _STORED_FIELDS, [_row(fields) for _, fields in new.values()])
    received = UsageEvent.Status.RECEIVED.value
    return {
        key: (index, _Stored(pk, fields.get("status", received), fields.get("errors", {})), True)
        for pk, (key, (index, fields)) in zip(pks, new.items(), strict=True)
    }


def _bulk_store(
    *, source: str, payloads: list[dict], new: dict[str, tuple[int, dict]]
) -> dict[str, tuple[int, _Stored | UsageEvent, bool]]:
    """As ``_rows_store``, once the records stored before are looked up and left out: a key
    whose twin was stored concurrently since gets the twin (and ``False``)."""
    try:
        with transaction.atomic():
            return _rows_store(new)
    except IntegrityError:
        # A concurrent delivery stored one of them first: row by row, each twin answers for itself.
        stored = {}
        for key, (index, _) in new.items():
            event, was_created = usage_event_store(payload=payloads[index], source=source)
            stored[key] = (index, event, was_created)
        return stored


def _outcome(index: int, payload: dict, event_id: int, event_status: str, errors: dict, status: str) -> RecordOutcome:
    external_id = payload.get("external_id")
    return RecordOutcome(
        index=index,
        external_id=external_id if isinstance(external_id, str) else "",
        status=status,
        event_id=event_id,
        event_status=event_status,
        errors=dict(errors or {}),
    )


# A charging task can be lost (say, a broker that keeps nothing on disk restarted with tasks
# queued). Records stored this long ago and still not charged are queued again; a task that
# was only slow then finds them charged and skips them.
SWEEP_CHUNK = 50_000  # records looked at per transaction
SWEEP_SECONDS = 60  # a sweep stops after about this long; the next one goes on from its mark


def requeue_after() -> timedelta:
    return timedelta(seconds=settings.CHARGING_REQUEUE_AFTER_SECONDS)


def usage_events_requeue(
    *, after: timedelta | None = None, chunk: int = SWEEP_CHUNK, now: datetime | None = None
) -> int:
    """Queues again the records stored more than ``after`` (default ``requeue_after()``) ago
    and still waiting to be charged; returns how many.

    No status is indexed (a charge rewrites a record on its own page, migration 0010), so the
    sweep walks the records by key, in chunks, from a mark below which every record is
    charged or rejected, up to the first record stored less than ``after`` ago. The mark
    moves up to the first record still waiting, or to where the walk stopped. A key is taken
    when a record is stored, before its transaction commits: the walk stops short of recent
    records so that it never passes one still on its way.
    """
    now = now or timezone.now()
    cutoff = now - (after if after is not None else requeue_after())
    started = time.monotonic()
    requeued = 0
    position, waiting_from = None, None
    while time.monotonic() - started < SWEEP_SECONDS:
        with transaction.atomic():
            sweep = usage_charge_sweep_lock()
            position = sweep.below_id if position is None else position
            rows = list(
                UsageEvent.objects.filter(pk__gte=position)
                .order_by("pk")
                .values_list("pk", "status", "received_at")[:chunk]
            )
            stuck, reached_recent = [], False
            for pk, status, received_at in rows:
                if received_at > cutoff:
                    reached_recent = True
                    break
                if status == UsageEvent.Status.RECEIVED:
                    stuck.append(pk)
                position = pk + 1
            waiting_from = waiting_from or (stuck[0] if stuck else None)
            sweep.below_id = waiting_from or position
            sweep.save(update_fields=["below_id"])
            _charge_after_commit(stuck)
        requeued += len(stuck)
        if reached_recent or len(rows) < chunk:
            break
    return requeued


def _charge_after_commit(event_ids: list[int]) -> None:
    """Queues charging tasks of ``CHARGING_BATCH_SIZE`` records each, once the transaction commits."""
    size = charging_batch_size()
    for start in range(0, len(event_ids), size):
        transaction.on_commit(partial(_queue_charge, event_ids[start : start + size]))


def _queue_charge(event_ids: list[int]) -> None:
    """Queues a charging task; if the broker is away, the records wait in the backlog (they are
    stored: the post that stored them still answers what it stored)."""
    try:
        task_queue(CHARGE_USAGE_BATCH, event_ids)
    except BROKER_ERRORS as error:
        logger.warning("charging task of %d records not queued (%s): kept in the backlog", len(event_ids), error)
        UsageQueueBacklog.objects.create(event_ids=event_ids)


def usage_backlog_queue(*, limit: int = 100) -> int:
    """Queues the charging tasks the broker could not take before; returns how many records.
    A task queued twice finds its records charged and skips them."""
    queued = 0
    for backlog in UsageQueueBacklog.objects.order_by("pk")[:limit]:
        task_queue(CHARGE_USAGE_BATCH, backlog.event_ids)  # raises while the broker is still away
        backlog.delete()
        queued += len(backlog.event_ids)
    return queued
