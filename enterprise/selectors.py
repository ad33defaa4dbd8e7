"""Reads of the cost-centre tree."""

from django.db.models import Count, F, Q, QuerySet

from enterprise.models import Company, CostCentre


def company_root(*, company: Company) -> CostCentre:
    return CostCentre.objects.get(company=company, parent__isnull=True)


def cost_centre_path(*, line_id: int) -> list[CostCentre]:
    """The line's device node and every ancestor, root first."""
    node = CostCentre.objects.filter(line_id=line_id).first()
    if node is None:
        return []
    return list(node.get_ancestors(include_self=True))


def cost_centre_tree_is_valid(*, company: Company) -> bool:
    """Checks the nested-set numbering against the parent pointers."""
    nodes: QuerySet[CostCentre] = CostCentre.objects.filter(company=company).order_by("lft")
    stack: list[CostCentre] = []
    seen = 0
    for node in nodes:
        while stack and stack[-1].rght < node.lft:
            stack.pop()
        expected_parent = stack[-1].pk if stack else None
        if node.parent_id != expected_parent or node.rght <= node.lft:
            return False
        if node.level != len(stack):
            return False
        stack.append(node)
        seen += 1
    roots = [n for n in nodes if n.parent_id is None]
    return len(roots) == 1 and roots[0].lft == 1 and roots[0].rght == 2 * seen


def cost_centres_managed_by(*, user) -> QuerySet[CostCentre]:
    """The nodes a manager was given, each with how many lines sit below it."""
    return (
        CostCentre.objects.filter(managers__user=user)
        .select_related("company")
        .annotate(
            line_count=Count(
                "company__cost_centres",
                filter=Q(
                    company__cost_centres__kind=CostCentre.Kind.DEVICE,
                    company__cost_centres__lft__gt=F("lft"),
                    company__cost_centres__rght__lt=F("rght"),
                ),
            )
        )
        .order_by("company__name", "lft")
    )
