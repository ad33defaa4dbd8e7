"""A line's profile for one service: what its sessions may draw on in the quota store.

Read from the database once and kept in Redis, so a session's steps touch no table. A profile
names the limits on the line's path (root first) and its usable allowances in draw order, or
says the line is charged in the database (no allowance, a limit with a policy other than
block, BYOD steering) or cannot be charged (unknown, inactive). Any change to what a profile
is made of moves the store's epoch, read with the profile in one round trip: a profile of an
earlier epoch is read afresh. A profile also expires before any of its allowances starts or ends.
"""

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from charging.allowances import bucket_draw_order
from charging.context import line_paths
from charging.models import Bucket, NodeLimit
from charging.quota import store
from charging.units import SERVICE_UNIT
from enterprise.models import SteeringRule
from portal.models import Line, LineHold

MAX_AGE_SECONDS = 300


class Mode:
    QUOTA = "quota"
    DATABASE = "database"
    UNKNOWN = "unknown"
    INACTIVE = "inactive"


@dataclass
class Profile:
    mode: str
    line_id: int = 0
    limit_keys: list[str] = field(default_factory=list)
    bucket_keys: list[str] = field(default_factory=list)
    node_ids: list[int] = field(default_factory=list)  # the cost centres above the line, for live pushes


PROFILE_FIELDS = {f.name for f in fields(Profile)}


def line_profile(*, msisdn: str, service: str, at: datetime) -> Profile:
    conn = store.client()
    key = store.profile_key(msisdn, service)
    epoch, cached = conn.mget([store.epoch_key(), key])
    epoch = int(epoch or 0)
    if cached is not None:
        stored = json.loads(cached)
        if stored.pop("epoch", None) == epoch and stored.keys() == PROFILE_FIELDS:
            return Profile(**stored)  # (one kept by another version of the code is read afresh)
    profile, horizon = profile_build(msisdn=msisdn, service=service, at=at)
    _remember(conn, key, profile, horizon, epoch=epoch, at=at)
    return profile


def profile_build(*, msisdn: str, service: str, at: datetime) -> tuple[Profile, datetime | None]:
    """The profile, and until when it holds (the next start or end of an allowance)."""
    line = Line.objects.with_held().filter(msisdn=msisdn).first()
    if line is None:
        return Profile(mode=Mode.UNKNOWN), None
    if LineHold.causes_barring(line.standing_hold_causes(), service=service):
        return Profile(mode=Mode.INACTIVE, line_id=line.pk), None
    return profiles_build(lines=[line], service=service, at=at)[line.pk]


def profiles_build(*, lines: list[Line], service: str, at: datetime) -> dict[int, tuple[Profile, datetime | None]]:
    """Profiles of many lines no hold bars, in a handful of queries."""
    unit = SERVICE_UNIT[service]
    paths = line_paths(line_ids={line.pk for line in lines})
    node_ids = {node for path in paths.values() for node in path.node_ids}
    steering = set(
        SteeringRule.objects.filter(company_id__in={p.company_id for p in paths.values()}).values_list(
            "company_id", flat=True
        )
    )
    limits = {limit.node_id: limit for limit in NodeLimit.objects.filter(node_id__in=node_ids, unit=unit)}
    held_by: dict[tuple[str, int], list[Bucket]] = defaultdict(list)
    for bucket in Bucket.objects.filter(Q(line__in=lines) | Q(cost_centre_id__in=node_ids), unit=unit).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=at)
    ):
        held_by[("line", bucket.line_id) if bucket.line_id else ("node", bucket.cost_centre_id)].append(bucket)
    profiles = {}
    for line in lines:
        path = paths.get(line.pk)
        node_ids = path.node_ids if path else []
        database = Profile(mode=Mode.DATABASE, line_id=line.pk)
        if path and path.personal_account_id and path.company_id in steering:
            profiles[line.pk] = database, None  # who pays depends on the zone and the hour
            continue
        on_path = [limits[node] for node in node_ids if node in limits]
        if any(limit.on_exceed != NodeLimit.OnExceed.BLOCK for limit in on_path):
            profiles[line.pk] = database, None  # past it, a policy the database applies
            continue
        own = [b for holder in [("line", line.pk), *(("node", n) for n in node_ids)] for b in held_by[holder]]
        usable = sorted((b for b in own if b.is_valid_at(at)), key=bucket_draw_order(at))
        moments = [b.valid_from for b in own if b.valid_from > at] + [b.valid_until for b in usable if b.valid_until]
        horizon = min(moments, default=None)
        if not usable:
            profiles[line.pk] = database, horizon
            continue
        profiles[line.pk] = (
            Profile(
                mode=Mode.QUOTA,
                line_id=line.pk,
                limit_keys=[store.counter_key(store.LIMIT, limit.pk) for limit in on_path],
                bucket_keys=[store.counter_key(store.BUCKET, bucket.pk) for bucket in usable],
                node_ids=node_ids[:-1],
            ),
            horizon,
        )
    return profiles


def profiles_warm(*, lines: list[Line], service: str, at: datetime | None = None) -> int:
    """Reads the profiles of many lines no hold bars at once into the store (say, a company's
    when the engine starts), so first requests find them. Returns how many."""
    at = at or timezone.now()
    conn = store.client()
    epoch = int(conn.get(store.epoch_key()) or 0)
    held = LineHold.objects.standing().filter(line_id__any=[line.pk for line in lines]).causes_by_line()
    active = [line for line in lines if not LineHold.causes_barring(held.get(line.pk, ()), service=service)]
    for start in range(0, len(active), 2000):
        chunk = active[start : start + 2000]
        built = profiles_build(lines=chunk, service=service, at=at)
        with conn.pipeline(transaction=False) as pipe:
            for line in chunk:
                _remember(pipe, store.profile_key(line.msisdn, service), *built[line.pk], epoch=epoch, at=at)
            pipe.execute()
    return len(active)


def _remember(conn, key: str, profile: Profile, horizon: datetime | None, *, epoch: int, at: datetime) -> None:
    seconds = MAX_AGE_SECONDS if horizon is None else min(MAX_AGE_SECONDS, int((horizon - at).total_seconds()))
    if seconds > 0:
        conn.set(key, json.dumps({**asdict(profile), "epoch": epoch}), ex=seconds)
