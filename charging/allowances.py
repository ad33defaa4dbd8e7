"""Which allowances a usage may draw on, and in what order.

A usage draws on the line's own allowances and the pools of the cost centres on its path,
of its unit and valid at its time: by priority, then the soonest to expire, then the oldest.
"""

from datetime import datetime

from django.db.models import F, Q

from charging.context import ChargingContext
from charging.models import Bucket


def usable_buckets_of(*, ctxs: list[ChargingContext]) -> set[int]:
    """Allowances any of these usages may draw on now, in one query (read without a lock;
    each charge re-checks its own once locked)."""
    return usable_buckets(
        line_ids={ctx.line.pk for ctx in ctxs},
        node_ids={node for ctx in ctxs for node in ctx.path_ids},
        units={ctx.unit for ctx in ctxs},
        at=min(ctx.at for ctx in ctxs),
    )


def usable_buckets(*, line_ids: set[int], node_ids: set[int], units: set[str], at: datetime) -> set[int]:
    """Allowances of these lines and nodes, in these units, with units left at ``at`` or
    later (see ``usable_buckets_of``)."""
    holders = Q(line_id__any=line_ids)
    if node_ids:
        holders |= Q(cost_centre_id__any=node_ids)
    return set(
        Bucket.objects.filter(holders, unit__in=units)
        .filter(Q(remaining__gt=F("reserved")) | Q(in_store__gt=0))  # a slice may be called back
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by()
        .values_list("pk", flat=True)
    )


def buckets_of_line(
    *, holders: dict[tuple[str, int], list[Bucket]], line_id: int, path_ids: list[int], unit: str, at: datetime
) -> list[Bucket]:
    """The line's own allowances and the pools on its path, of a unit, in the order they are
    drawn from at ``at``. ``holders``: allowances by holder (see ``Locked.buckets_by_holder``)."""
    on_path = [*holders.get(("line", line_id), ())]
    for node in path_ids:
        on_path.extend(holders.get(("node", node), ()))
    of_unit = [bucket for bucket in on_path if bucket.unit == unit]
    return sorted(of_unit, key=bucket_draw_order(at)) if len(of_unit) > 1 else of_unit


def bucket_draw_order(at: datetime):
    """Priority first, then the soonest to expire (those that never do last), then the oldest."""
    return lambda b: (b.priority, b.valid_until is None, b.valid_until or at, b.pk)


def is_usable(*, bucket: Bucket, ctx: ChargingContext) -> bool:
    held_on_path = bucket.line_id == ctx.line.pk or bucket.cost_centre_id in ctx.path_ids
    return held_on_path and bucket.unit == ctx.unit and bucket.is_valid_at(ctx.at) and not ctx.steered_personal
