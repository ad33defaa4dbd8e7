"""The context of a usage: everything it is charged against that does not change while it is
charged, read before any lock is taken (the line's path in the cost-centre tree, who pays,
the tariff and its rates, the usage earlier in the month for volume tiers)."""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple, Protocol

from django.db.models import Sum

from charging.models import ChargingSession, LineRatePlan, Tariff, TariffRate, UsageEvent
from charging.periods import period_start
from charging.rating import tariff_rates
from charging.steering import steering_payer
from charging.units import SERVICE_UNIT
from enterprise.models import CostCentre, SteeringRule
from portal.models import Line


class ChargedLine(Protocol):
    """What charging needs of a line: its key and the account it bills to (a ``Line``, or a
    ``LineKey`` where a batch reads thousands)."""

    pk: int
    billing_account_id: int


class LineKey(NamedTuple):
    pk: int
    billing_account_id: int


@dataclass
class ChargingContext:
    """What a line's usage is charged against, read before any lock is taken."""

    line: ChargedLine
    service: str
    unit: str
    zone: str
    at: datetime
    path_ids: list[int]
    payer_account_id: int
    personal_account_id: int | None
    steered_personal: bool
    tariff: Tariff | None
    rates: list[TariffRate]
    period_used: int = 0  # units of this service the line used earlier this month, for volume tiers
    steering_rules: list[SteeringRule] = field(default_factory=list)

    @property
    def cost_centre_ids(self) -> list[int]:
        """The cost centres above the line's own device node, root first: whose managers see
        this usage live (the line itself is pushed to its own group)."""
        return self.path_ids[:-1]


def charging_context(
    *, line: Line, service: str, zone: str, at: datetime, session_id: int | None = None
) -> ChargingContext:
    """The context of one usage; ``session_id``: the session it belongs to, whose own usage
    the caller counts (so volume tiers do not count it twice)."""
    return charging_contexts(requests=[(line, service, zone, at)], session_id=session_id)[0]


def context_at(ctx: ChargingContext, at: datetime) -> ChargingContext:
    """The same usage at another moment: a steering rule by time of day may pick another payer."""
    steered = ctx.personal_account_id is not None and (
        steering_payer(rules=ctx.steering_rules, service=ctx.service, zone=ctx.zone, at=at)
        == SteeringRule.Payer.PERSONAL
    )
    payer = ctx.personal_account_id if steered else ctx.line.billing_account_id
    return replace(ctx, at=at, steered_personal=steered, payer_account_id=payer)


def charging_contexts(
    *,
    requests: list[tuple[ChargedLine, str, str, datetime]],
    session_id: int | None = None,
    paths: "dict[int, LinePath] | None" = None,
) -> list[ChargingContext]:
    """Contexts for many usages at once, in a handful of queries whatever their number: the
    device nodes of the lines, their trees' inner nodes (to walk each path up), the
    companies' steering rules and the tariffs. ``paths``: the lines' paths, if the caller
    has read them (``line_paths``)."""
    line_ids = {line.pk for line, *_ in requests}
    if paths is None:
        paths = line_paths(line_ids=line_ids)
    rules: dict[int, list[SteeringRule]] = {}
    for rule in SteeringRule.objects.filter(company_id__in={path.company_id for path in paths.values()}):
        rules.setdefault(rule.company_id, []).append(rule)
    tariffs = TariffCache(line_ids=line_ids)
    contexts = []
    for line, service, zone, at in requests:
        path = paths.get(line.pk)
        path_ids = path.node_ids if path else []
        personal_account_id = path.personal_account_id if path else None
        company_rules = rules.get(path.company_id, []) if path else []
        steered_personal = personal_account_id is not None and (
            steering_payer(rules=company_rules, service=service, zone=zone, at=at) == SteeringRule.Payer.PERSONAL
        )
        tariff = tariffs.tariff(line_id=line.pk, service=service)
        contexts.append(
            ChargingContext(
                line=line,
                service=service,
                unit=SERVICE_UNIT[service],
                zone=zone,
                at=at,
                path_ids=path_ids,
                payer_account_id=personal_account_id if steered_personal else line.billing_account_id,
                personal_account_id=personal_account_id,
                steered_personal=steered_personal,
                tariff=tariff,
                rates=tariffs.rates(tariff=tariff),
                steering_rules=company_rules,
            )
        )
    for ctx in contexts:
        if any(rate.tier_from for rate in ctx.rates):
            ctx.period_used = line_period_usage(
                line_id=ctx.line.pk, service=ctx.service, at=ctx.at, exclude_session_id=session_id
            )
    return contexts


@dataclass
class LinePath:
    """Where a line sits in its company's tree: its device node and every cost centre above
    it, root first."""

    node_ids: list[int]
    company_id: int
    personal_account_id: int | None


class _Device(NamedTuple):
    """A line's own node in the cost-centre tree, as much of it as a path needs."""

    pk: int
    line_id: int
    parent_id: int | None
    company_id: int
    personal_account_id: int | None


_DEVICE_FIELDS = ("pk", "line_id", "parent_id", "company_id", "personal_account_id")


def line_paths(*, line_ids: set[int]) -> dict[int, LinePath]:
    """The paths of many lines: their device nodes, then the nodes above them one level at a
    time (a query per level, of those nodes only). A line outside any company has none."""
    rows = CostCentre.objects.filter(line_id__any=line_ids).order_by().values_list(*_DEVICE_FIELDS)
    return _paths_above(list(map(_Device._make, rows)))


def lines_with_paths(*, line_ids: set[int]) -> tuple[dict[int, LineKey], dict[int, LinePath]]:
    """The lines' keys (with the accounts they bill to) and their paths (``line_paths``); the
    accounts of lines in a company are read with their device nodes."""
    rows = (
        CostCentre.objects.filter(line_id__any=line_ids)
        .order_by()
        .values_list(*_DEVICE_FIELDS, "line__billing_account_id")
    )
    devices, lines = [], {}
    for *device, account_id in rows:
        node = _Device._make(device)
        devices.append(node)
        lines[node.line_id] = LineKey(node.line_id, account_id)
    outside = line_ids - lines.keys()  # no company: no node, and no path
    if outside:
        found = Line.objects.filter(pk__any=outside).order_by().values_list("pk", "billing_account_id")
        lines.update((pk, LineKey(pk, account_id)) for pk, account_id in found)
    return lines, _paths_above(devices)


def _paths_above(devices: list[_Device]) -> dict[int, LinePath]:
    """The devices' paths, root first; the nodes above them read one level at a time, and each
    chain above a node worked out once for all the lines below it."""
    parents: dict[int, int | None] = {}
    wanted = {node.parent_id for node in devices} - {None}
    while wanted:
        level = dict(CostCentre.objects.filter(pk__any=wanted).order_by().values_list("pk", "parent_id"))
        parents.update(level)
        wanted = set(level.values()) - {None} - parents.keys()
    chains: dict[int | None, list[int]] = {None: []}  # node -> the path down to it, root first

    def chain(node_id: int | None) -> list[int]:
        found = chains.get(node_id)
        if found is None:
            found = chains[node_id] = [*chain(parents.get(node_id)), node_id]
        return found

    return {
        node.line_id: LinePath([*chain(node.parent_id), node.pk], node.company_id, node.personal_account_id)
        for node in devices
    }


def line_period_usage(*, line_id: int, service: str, at: datetime, exclude_session_id: int | None = None) -> int:
    """Units of a service a line used this month before now, online and offline: what a
    volume tier counts. Read only for tariffs that have tiers."""
    since = period_start(period="month", at=at)
    sessions = ChargingSession.objects.filter(line_id=line_id, service=service, opened_at__gte=since)
    if exclude_session_id is not None:
        sessions = sessions.exclude(pk=exclude_session_id)
    online = sessions.aggregate(total=Sum("used_units"))["total"]
    offline = UsageEvent.objects.filter(
        line_id=line_id, service=service, status=UsageEvent.Status.CHARGED, occurred_at__gte=since, occurred_at__lt=at
    ).aggregate(total=Sum("quantity"))["total"]
    return (online or 0) + (offline or 0)


class TariffCache:
    """The tariffs of a set of lines, each read once: the line's rate plan's, else the default."""

    def __init__(self, *, line_ids: set[int]):
        plans = LineRatePlan.objects.filter(line_id__any=line_ids).order_by()
        self.plan_of = dict(plans.values_list("line_id", "rate_plan_id"))
        self._tariffs: dict[tuple[int | None, str], Tariff | None] = {}
        self._rates: dict[int, list[TariffRate]] = {}

    def tariff(self, *, line_id: int, service: str) -> Tariff | None:
        plan_id = self.plan_of.get(line_id)
        key = (plan_id, service)
        if key not in self._tariffs:
            own = Tariff.objects.filter(rate_plan_id=plan_id, service=service).first() if plan_id else None
            self._tariffs[key] = own or Tariff.objects.filter(service=service, is_default=True).first()
        return self._tariffs[key]

    def rates(self, *, tariff: Tariff | None) -> list[TariffRate]:
        if tariff is None:
            return []
        if tariff.pk not in self._rates:
            self._rates[tariff.pk] = tariff_rates(tariff=tariff)
        return self._rates[tariff.pk]
