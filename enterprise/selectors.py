"""Reads of the cost-centre tree, and who may see which line (every role, in one place)."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from enterprise.models import Company, CostCentre, ManagerAssignment
from portal.models import AuditEntry, Customer, Line
from portal.selectors import agent_sees_every_line, lines_owned_by


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


def managed_node_ids(*, user) -> list[int]:
    """The nodes assigned to a manager (each stands for its whole subtree)."""
    return list(ManagerAssignment.objects.filter(user=user).order_by("node_id").values_list("node_id", flat=True))


def lines_managed_by(*, user) -> QuerySet[Line]:
    """The lines a telecom manager sees: those whose device node lies in a subtree assigned
    to them (the node itself or below it), whoever holds the company's login."""
    above = ManagerAssignment.objects.filter(
        user=user,
        node__tree_id=OuterRef("cost_centre__tree_id"),
        node__lft__lte=OuterRef("cost_centre__lft"),
        node__rght__gte=OuterRef("cost_centre__rght"),
    )
    return Line.objects.filter(Exists(above))


def cost_centres_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[CostCentre]:
    """Every cost centre a user may open or watch: an agent who sees every line sees every
    node; a manager the nodes of their assigned subtrees; anyone else none."""
    if not user.is_authenticated:
        return CostCentre.objects.none()
    if agent_sees_every_line(user=user):
        return CostCentre.objects.all()
    return cost_centres_in_subtrees_of(user=user)


def cost_centres_in_subtrees_of(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[CostCentre]:
    """The cost centres a manager may open and change: the nodes assigned to them and
    everything below. The manager's pages, fragments and forms look nodes up here only (an
    agent works in the admin): any other id answers 404."""
    if not user.is_authenticated:
        return CostCentre.objects.none()
    above = ManagerAssignment.objects.filter(
        user=user, node__tree_id=OuterRef("tree_id"), node__lft__lte=OuterRef("lft"), node__rght__gte=OuterRef("rght")
    )
    return CostCentre.objects.filter(Exists(above))


def lines_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Line]:
    """Every line a user may open or watch, whatever their role: an agent every line their
    group allows, a consumer their own, a manager those below their assigned nodes. Another
    line is as good as one that does not exist (404)."""
    if not user.is_authenticated:
        return Line.objects.none()
    if agent_sees_every_line(user=user):
        return Line.objects.all()
    own = Q(pk__in=lines_owned_by(user=user).order_by().values("pk"))
    return Line.objects.filter(own | Q(pk__in=lines_managed_by(user=user).values("pk")))


# --- Who may be given access ------------------------------------------------------------------


def customer_login_refusal(*, customer: Customer, user) -> str | None:
    """Why ``user`` may not become ``customer``'s login (who sees all its accounts), or None.
    Only a login tied to nothing else may: not an agent, not another customer's login, not a
    manager of another company's nodes (a company's login may already manage its own)."""
    if user.is_staff:
        return f"{user} is call-centre staff: agents see customers through their group, not as their login."
    other = Customer.objects.filter(user=user).exclude(pk=customer.pk).first()
    if other is not None:
        return f"{user} is already the login of {other}: one login per customer."
    managed = ManagerAssignment.objects.filter(user=user).select_related("node__company")
    if customer.kind == Customer.Kind.COMPANY:
        managed = managed.exclude(node__company__customer_id=customer.pk)
    elsewhere = managed.first()
    if elsewhere is not None:
        return f"{user} manages {elsewhere.node} of {elsewhere.node.company}: a login of its own is needed."
    return None


def manager_assignment_refusal(*, user, node: CostCentre, assignment_id: int | None = None) -> str | None:
    """Why ``user`` may not be given ``node`` (and every line below it), or None. The company's
    own login may manage any of its nodes; a login tied to nothing may be made a sub-manager;
    a consumer (a person customer's login) only a node below the root of a company they work
    for (their account pays for one of its devices, or they manage part of it already); no
    login tied to another company, and no agent."""
    company = node.company
    if user.is_staff:
        return f"{user} is call-centre staff: agents see lines through their group, not as managers."
    owned = list(Customer.objects.filter(user=user))
    if any(c.pk == company.customer_id for c in owned):
        return None
    others = ManagerAssignment.objects.filter(user=user).exclude(pk=assignment_id)
    other_company = next((c for c in owned if c.kind == Customer.Kind.COMPANY), None)
    if other_company is None:
        elsewhere = others.exclude(node__company=company).select_related("node__company").first()
        other_company = elsewhere.node.company if elsewhere is not None else None
    if other_company is not None:
        return f"{user} belongs to {other_company}: they cannot manage part of {company}."
    if not owned:
        return None  # a login made for a sub-manager
    if node.parent_id is None:
        return f"{user} is a consumer's login: they cannot be given all of {company}."
    works_here = (
        others.filter(node__company=company).exists()
        or CostCentre.objects.filter(company=company, personal_account__customer__in=owned).exists()
    )
    if not works_here:
        return f"{user} is a consumer's login with nothing to do with {company}."
    return None


# --- A manager's view of the tree -------------------------------------------------------------


def cost_centre_roots_of(*, user) -> QuerySet[CostCentre]:
    """The tops of a manager's subtrees: assigned nodes that lie below no other assigned node."""
    inside = ManagerAssignment.objects.filter(
        user=user,
        node__tree_id=OuterRef("tree_id"),
        node__lft__lt=OuterRef("lft"),
        node__rght__gt=OuterRef("rght"),
    )
    return (
        CostCentre.objects.filter(managers__user=user)
        .exclude(Exists(inside))
        .select_related("company")
        .order_by("company__name", "lft")
    )


def _with_line_counts(nodes: QuerySet[CostCentre]) -> QuerySet[CostCentre]:
    """Annotates each node with the lines below it (itself included): one subquery over the
    nested set, however many nodes are listed."""
    below = (
        CostCentre.objects.filter(
            tree_id=OuterRef("tree_id"),
            lft__gte=OuterRef("lft"),
            rght__lte=OuterRef("rght"),
            kind=CostCentre.Kind.DEVICE,
        )
        .order_by()
        .values("tree_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return nodes.annotate(line_count=Coalesce(Subquery(below), 0))


def cost_centre_children(*, node: CostCentre) -> QuerySet[CostCentre]:
    """A node's children (device nodes with their lines), each with its line count."""
    children = CostCentre.objects.filter(parent=node).select_related("line").order_by("lft")
    return _with_line_counts(children)


def cost_centres_with_line_counts(*, nodes: QuerySet[CostCentre]) -> QuerySet[CostCentre]:
    return _with_line_counts(nodes)


def cost_centre_breadcrumbs(*, user, node: CostCentre) -> list[CostCentre]:
    """The node's ancestors the manager may open, from the top of their subtree down."""
    return list(
        cost_centres_in_subtrees_of(user=user).filter(tree_id=node.tree_id, lft__lt=node.lft, rght__gt=node.rght)
    )


def cost_centre_lines(*, node: CostCentre) -> QuerySet[CostCentre]:
    """The device nodes (lines) below a node, itself included, by number."""
    return (
        CostCentre.objects.filter(
            tree_id=node.tree_id, lft__gte=node.lft, rght__lte=node.rght, kind=CostCentre.Kind.DEVICE
        )
        .select_related("line", "personal_account__customer", "parent")
        .order_by("line__msisdn")
    )


def cost_centre_search(*, user, query: str, limit: int = 20) -> list[CostCentre]:
    """Cost centres and lines the manager may open whose name, number, device label or user's
    name contains ``query``; numbers match with or without a leading + or spaces."""
    query = query.strip()
    if not query:
        return []
    digits = query.replace(" ", "").lstrip("+")
    wanted = Q(name__icontains=query) | Q(line__device_label__icontains=query)
    wanted |= Q(personal_account__customer__name__icontains=query)
    if digits.isdigit():
        wanted |= Q(line__msisdn__contains=digits)
    return list(
        cost_centres_in_subtrees_of(user=user)
        .filter(wanted)
        .select_related("line", "personal_account__customer", "parent")
        .order_by("level", "name")[:limit]
    )


def cost_centres_near(*, user, node: CostCentre) -> QuerySet[CostCentre]:
    """A node's parent, siblings and children the manager may open: where headroom is most
    often traded to."""
    near = Q(parent_id=node.pk)
    if node.parent_id is not None:
        near |= Q(pk=node.parent_id) | Q(parent_id=node.parent_id)
    return cost_centres_in_subtrees_of(user=user).filter(near).exclude(pk=node.pk).order_by("lft")


def cost_centre_history(*, node: CostCentre) -> QuerySet[AuditEntry]:
    """The audited changes made to a node (its limits, headroom moved in or out), newest first."""
    return AuditEntry.objects.filter(
        target_type=ContentType.objects.get_for_model(CostCentre), target_id=str(node.pk)
    ).select_related("actor")
