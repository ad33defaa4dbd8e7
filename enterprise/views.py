"""The enterprise telecom manager's pages (/enterprise/). Every node is looked up through
``cost_centres_in_subtrees_of``: a node outside the manager's subtrees answers 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from charging.allocation import node_headroom_move as headroom_move
from charging.allocation import node_limit_change as limit_change
from charging.node_figures import UNIT_LABELS, node_limits_of, node_pools, node_roll_up
from charging.units import format_units
from enterprise.forms import HeadroomMoveForm, NodeLimitForm
from enterprise.models import CostCentre
from enterprise.selectors import (
    cost_centre_breadcrumbs,
    cost_centre_children,
    cost_centre_history,
    cost_centre_lines,
    cost_centre_roots_of,
    cost_centre_search,
    cost_centres_in_subtrees_of,
    cost_centres_near,
    cost_centres_with_line_counts,
)

LINES_PER_PAGE = 25
CHILDREN_SHOWN = 100  # in the tree; a node's page lists all its lines, a page at a time


def _change_summary(entry, names: dict[int, str]) -> str:
    """An audited change to a node as a sentence."""
    before, after = entry.before, entry.after
    unit = after.get("unit", "")
    label = UNIT_LABELS.get(unit, unit)

    def shown(value) -> str:
        return "none" if value is None else format_units(value, unit)

    if entry.action == "node_limit.change":
        return f"{label} limit {shown(before.get('limit'))} → {shown(after.get('limit'))}"
    if entry.action == "node_limit.move":
        name = names.get(after.get("to", after.get("from")), "a cost centre outside your view")
        side = "source" if "to" in after else "target"
        mine = f"{shown(before[side]['limit'])} → {shown(after[side]['limit'])}"
        direction = "to" if "to" in after else "from"
        return f"{label}: {shown(after['amount'])} moved {direction} {name} (limit {mine})"
    return entry.action


def _node(request, node_id: int) -> CostCentre:
    nodes = cost_centres_in_subtrees_of(user=request.user).select_related("company", "line")
    return get_object_or_404(nodes, pk=node_id)


def _row(node: CostCentre, limits: dict) -> dict:
    return {"node": node, "limits": limits[node.pk], "has_children": node.rght - node.lft > 1}


def _rows(nodes) -> list[dict]:
    """Nodes as tree rows, each with its limits (one query for all of them)."""
    nodes = list(nodes)
    limits = node_limits_of(node_ids=[n.pk for n in nodes])
    return [_row(n, limits) for n in nodes]


@login_required
def tree(request):
    roots = list(cost_centres_with_line_counts(nodes=cost_centre_roots_of(user=request.user)))
    children = {root.pk: list(cost_centre_children(node=root)) for root in roots}
    limits = node_limits_of(node_ids=[n.pk for n in roots] + [c.pk for kids in children.values() for c in kids])
    trees = [{**_row(root, limits), "children": [_row(child, limits) for child in children[root.pk]]} for root in roots]
    return render(request, "enterprise/tree.html", {"trees": trees})


@login_required
def search(request):
    query = request.GET.get("q", "")[:100]
    results = cost_centre_search(user=request.user, query=query)
    if len(results) == 1:
        return redirect("enterprise:node", results[0].pk)
    return render(request, "enterprise/search.html", {"q": query, "results": results})


@login_required
def node_children(request, node_id: int):
    node = _node(request, node_id)
    rows = _rows(cost_centre_children(node=node)[: CHILDREN_SHOWN + 1])
    context = {"rows": rows[:CHILDREN_SHOWN], "more": len(rows) > CHILDREN_SHOWN, "node": node}
    return render(request, "enterprise/_children.html", context)


def _node_page(request, node: CostCentre, *, limit_form=None, move_form=None, status: int = 200):
    lines = None
    if node.line_id is None:  # a device node is its one line
        lines = Paginator(cost_centre_lines(node=node), LINES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "node": node,
        "breadcrumbs": cost_centre_breadcrumbs(user=request.user, node=node),
        "limits": node_limits_of(node_ids=[node.pk])[node.pk],
        "roll_up": node_roll_up(node=node),
        "pools": node_pools(node=node),
        "children": _rows(cost_centre_children(node=node)) if node.kind != CostCentre.Kind.DEVICE else [],
        "lines": lines,
        "limit_form": limit_form or NodeLimitForm(),
        "move_form": move_form or HeadroomMoveForm(targets=cost_centres_near(user=request.user, node=node)),
    }
    return render(request, "enterprise/node.html", context, status=status)


@login_required
def node_detail(request, node_id: int):
    return _node_page(request, _node(request, node_id))


@login_required
@require_POST
def node_limit_change(request, node_id: int):
    node = _node(request, node_id)
    form = NodeLimitForm(request.POST)
    if form.is_valid():
        try:
            limit_change(
                node=node,
                unit=form.cleaned_data["unit"],
                limit=form.units("limit"),
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Limit changed.")
            return redirect("enterprise:node", node.pk)
    return _node_page(request, node, limit_form=form, status=400)


@login_required
@require_POST
def node_headroom_move(request, node_id: int):
    node = _node(request, node_id)
    target_id = request.POST.get("target", "")
    if target_id.isdigit():
        _node(request, int(target_id))  # a target outside the manager's subtrees: 404 as well
    # Any node the manager may open can receive headroom; the form lists the nearest ones.
    form = HeadroomMoveForm(request.POST, targets=cost_centres_in_subtrees_of(user=request.user))
    if form.is_valid():
        target = form.cleaned_data["target"]
        try:
            headroom_move(
                source=node,
                target=target,
                unit=form.cleaned_data["unit"],
                amount=form.units("amount"),
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Headroom moved to {target.name}.")
            return redirect("enterprise:node", node.pk)
    form.fields["target"].queryset = cost_centres_near(user=request.user, node=node)
    return _node_page(request, node, move_form=form, status=400)


@login_required
def node_history(request, node_id: int):
    node = _node(request, node_id)
    entries = Paginator(cost_centre_history(node=node), 50).get_page(request.GET.get("page"))
    others = {e.after.get("to", e.after.get("from")) for e in entries} - {None}
    visible = cost_centres_in_subtrees_of(user=request.user).filter(pk__in=others)
    names = dict(visible.values_list("pk", "name"))
    for entry in entries:
        entry.summary = _change_summary(entry, names)
    return render(
        request,
        "enterprise/history.html",
        {
            "node": node,
            "breadcrumbs": [*cost_centre_breadcrumbs(user=request.user, node=node), node],
            "entries": entries,
        },
    )
