"""Reads of a cost centre's figures for the manager's pages: its limits, what is allocated
below it, its pools. Each read is a fixed number of queries, whatever the company's size."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import BigIntegerField, Case, Count, Exists, F, OuterRef, Q, Sum, Value, When
from django.utils import timezone

from charging.models import Bucket, NodeLimit
from charging.periods import period_start
from charging.selectors import bucket_view
from charging.units import Unit, format_units
from enterprise.models import CostCentre

UNIT_LABELS: dict[str, str] = {
    Unit.BYTES.value: "Data",
    Unit.SECONDS.value: "Voice and video",
    Unit.MESSAGES.value: "SMS",
    Unit.ITEMS.value: "Content",
}

# What a manager types a limit in: data in MB, time in minutes, messages and items as counted.
ENTRY_SCALE: dict[str, tuple[int, str]] = {
    Unit.BYTES.value: (1024**2, "MB"),
    Unit.SECONDS.value: (60, "minutes"),
    Unit.MESSAGES.value: (1, "SMS"),
    Unit.ITEMS.value: (1, "items"),
}


# What happens past a limit, as a node page says it in a few words.
PAST_LIMIT: dict[str, str] = {
    NodeLimit.OnExceed.BLOCK.value: "blocked",
    NodeLimit.OnExceed.THROTTLE.value: "throttled",
    NodeLimit.OnExceed.OVERAGE.value: "overage, billed to the company",
    NodeLimit.OnExceed.PERSONAL.value: "charged to the user",
}


class _InUnits:
    """How a figure of ``unit`` (limit, used, reserved) reads on a page."""

    @property
    def label(self) -> str:
        return UNIT_LABELS.get(self.unit, self.unit)

    @property
    def limit_display(self) -> str:
        return format_units(self.limit, self.unit)

    @property
    def used_display(self) -> str:
        return format_units(self.used, self.unit)

    @property
    def reserved_display(self) -> str:
        return format_units(self.reserved, self.unit)


@dataclass(frozen=True)
class LimitFigures(_InUnits):
    """One limit as a page shows it; ``used`` is this period's (a period not yet rolled over
    by a charge counts as nothing used)."""

    id: int
    node_id: int
    unit: str
    period: str
    on_exceed: str
    limit: int
    used: int
    reserved: int

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used - self.reserved, 0)

    @property
    def percent_used(self) -> int:
        return 100 if self.limit == 0 and self.used else round(100 * min(self.used, self.limit) / (self.limit or 1))

    @property
    def remaining_display(self) -> str:
        return format_units(self.remaining, self.unit)

    @property
    def on_exceed_display(self) -> str:
        return PAST_LIMIT.get(self.on_exceed, self.on_exceed)


@dataclass(frozen=True)
class RollUp(_InUnits):
    """What is allocated below a node in one unit: the limits of the topmost limited nodes
    of its subtree (a limit nested inside another is already counted by it)."""

    unit: str
    nodes: int
    limit: int
    used: int
    reserved: int


def _figures(row, at: datetime) -> LimitFigures:
    pk, node_id, unit, period, on_exceed, limit, used, reserved, counted_from = row
    if counted_from < period_start(period=period, at=at):
        used = 0
    return LimitFigures(pk, node_id, unit, period, on_exceed, limit, used, reserved)


_FIELDS = ("pk", "node_id", "unit", "period", "on_exceed", "limit", "used", "reserved", "period_start")


def node_limits_of(*, node_ids: list[int], at: datetime | None = None) -> dict[int, list[LimitFigures]]:
    """Each node's limits by unit (one query)."""
    at = at or timezone.now()
    by_node: dict[int, list[LimitFigures]] = {node_id: [] for node_id in node_ids}
    if not node_ids:
        return by_node
    for row in NodeLimit.objects.filter(node_id__in=node_ids).order_by("node_id", "unit").values_list(*_FIELDS):
        by_node[row[1]].append(_figures(row, at))
    return by_node


def node_roll_up(*, node: CostCentre, at: datetime | None = None) -> list[RollUp]:
    """Per unit, the limits allocated below ``node`` (one aggregate query over the nested set)."""
    at = at or timezone.now()
    # A limit no charge has rolled into this period yet has used nothing in it.
    current = Q()
    for period in NodeLimit.Period.values:
        current |= Q(period=period, period_start__gte=period_start(period=period, at=at))
    this_period_used = Case(When(current, then=F("used")), default=Value(0), output_field=BigIntegerField())
    between = NodeLimit.objects.filter(
        unit=OuterRef("unit"),
        node__tree_id=node.tree_id,
        node__lft__gt=node.lft,
        node__lft__lt=OuterRef("node__lft"),
        node__rght__gt=OuterRef("node__rght"),
    )
    rows = (
        NodeLimit.objects.filter(node__tree_id=node.tree_id, node__lft__gt=node.lft, node__rght__lt=node.rght)
        .exclude(Exists(between))
        .order_by()
        .values("unit")
        .annotate(nodes=Count("pk"), limit=Sum("limit"), used=Sum(this_period_used), reserved=Sum("reserved"))
        .order_by("unit")
    )
    return [RollUp(r["unit"], r["nodes"], r["limit"], r["used"], r["reserved"]) for r in rows]


def node_pools(*, node: CostCentre) -> list[dict]:
    """The allowances the node holds for the lines below it, as the live page draws them."""
    return [bucket_view(b) for b in Bucket.objects.filter(cost_centre=node).order_by("priority", "pk")]
