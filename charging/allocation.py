"""A manager's allocation of limits down the tree: setting a node's limit, and moving
headroom from one node to another. Each locks the limits it touches through
``charging.locks`` in the engine's own order, so a charge in flight sees either the limits
before the change or after it, never a mix, and no charge and change wait on each other in a
cycle. Every change is audited on the node it changed."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from charging import live
from charging.locks import node_limits_lock
from charging.models import NodeLimit
from charging.node_figures import UNIT_LABELS
from charging.periods import limit_periods_roll
from charging.units import format_units
from enterprise.models import CostCentre
from portal.audit import audit_record
from portal.db.profile_epoch import profiles_forget


def _limit_state(limit: NodeLimit | None) -> dict:
    if limit is None:
        return {"limit": None}
    return {"limit": limit.limit, "used": limit.used, "reserved": limit.reserved, "period": limit.period}


def _label(unit: str) -> str:
    return UNIT_LABELS.get(unit, unit)


def _need_reason(reason: str) -> None:
    if not reason.strip():
        raise ValidationError({"reason": "Say why: the change is recorded with its reason."})


@transaction.atomic
def node_limit_change(*, node: CostCentre, unit: str, limit: int, reason: str, actor) -> NodeLimit:
    """Sets ``node``'s limit of ``unit`` (a new limit counts per month and blocks past it).
    Never below what the node already used and holds this period: that is refused with the
    field named, and nothing changes."""
    _need_reason(reason)
    if limit < 0:
        raise ValidationError({"limit": "A limit cannot be negative."})
    now = timezone.now()
    locked = node_limits_lock(nodes_by_unit={unit: {node.pk}})
    limit_periods_roll(limits=locked, at=now)
    current = locked[0] if locked else None
    before = _limit_state(current)
    if current is not None and limit < current.used + current.reserved:
        taken = format_units(current.used + current.reserved, unit)
        raise ValidationError(
            {"limit": f"{format_units(limit, unit)} is below what is already used and reserved ({taken})."}
        )
    if current is not None and limit == current.limit:
        raise ValidationError({"limit": f"The limit is already {format_units(limit, unit)}."})
    if current is None:
        current = NodeLimit.objects.create(node=node, unit=unit, limit=limit, period_start=now)
    else:
        NodeLimit.objects.filter(pk=current.pk).update(limit=limit)
        current.limit = limit
    audit_record(
        actor=actor,
        action="node_limit.change",
        target=node,
        before={"unit": unit, **before},
        after={"unit": unit, **_limit_state(current)},
        reason=reason,
    )
    profiles_forget()  # the limits on a line's path are part of its profile
    live.changed_on_commit(node_ids=[node.pk])
    return current


@transaction.atomic
def node_headroom_move(
    *, source: CostCentre, target: CostCentre, unit: str, amount: int, reason: str, actor
) -> tuple[NodeLimit, NodeLimit]:
    """Moves ``amount`` units of headroom (limit not yet used or reserved) from ``source``'s
    limit to ``target``'s, in one transaction holding both limits locked: the source's limit
    falls by what the target's rises, and no charge sees one without the other."""
    _need_reason(reason)
    if amount <= 0:
        raise ValidationError({"amount": "Move a positive amount."})
    if source.pk == target.pk:
        raise ValidationError({"target": "Choose another cost centre to move headroom to."})
    if source.company_id != target.company_id:
        raise ValidationError({"target": "Headroom moves only within one company."})
    now = timezone.now()
    locked = node_limits_lock(nodes_by_unit={unit: {source.pk, target.pk}})
    limit_periods_roll(limits=locked, at=now)
    by_node = {limit.node_id: limit for limit in locked}
    giving, taking = by_node.get(source.pk), by_node.get(target.pk)
    if giving is None:
        raise ValidationError({"unit": f"{source} has no {_label(unit)} limit to move headroom from."})
    if taking is None:
        raise ValidationError({"target": f"{target} has no {_label(unit)} limit: set one first."})
    if amount > giving.headroom:
        free = format_units(max(giving.headroom, 0), unit)
        raise ValidationError({"amount": f"{format_units(amount, unit)} is more than {source} has free ({free})."})
    before = {"source": _limit_state(giving), "target": _limit_state(taking)}
    NodeLimit.objects.filter(pk=giving.pk).update(limit=giving.limit - amount)
    NodeLimit.objects.filter(pk=taking.pk).update(limit=taking.limit + amount)
    giving.limit -= amount
    taking.limit += amount
    after = {"source": _limit_state(giving), "target": _limit_state(taking)}
    for node, other, direction in ((source, target, "to"), (target, source, "from")):
        audit_record(
            actor=actor,
            action="node_limit.move",
            target=node,
            before={"unit": unit, "amount": amount, direction: other.pk, **before},
            after={"unit": unit, "amount": amount, direction: other.pk, **after},
            reason=reason,
        )
    profiles_forget()
    live.changed_on_commit(node_ids=[source.pk, target.pk])
    return giving, taking
