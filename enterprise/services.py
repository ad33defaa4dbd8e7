"""Writes to companies and their cost-centre tree."""

from django.db import transaction

from enterprise.locks import cost_centre_tree_lock
from enterprise.models import Company, CostCentre
from portal.db.profile_epoch import profiles_forget
from portal.models import Customer, Line


@transaction.atomic
def company_create(*, customer: Customer, name: str) -> Company:
    company = Company.objects.create(customer=customer, name=name)
    CostCentre.objects.create(company=company, name=name, kind=CostCentre.Kind.COMPANY)
    return company


@transaction.atomic
def cost_centre_create(*, parent: CostCentre, name: str, kind: str, line: Line | None = None) -> CostCentre:
    cost_centre_tree_lock(company_id=parent.company_id)
    parent.refresh_from_db()  # the tree may have been renumbered while we waited for the lock
    node = CostCentre.objects.create(company_id=parent.company_id, parent=parent, name=name, kind=kind, line=line)
    profiles_forget()  # a line's path in the tree is part of its profile
    return node
