"""What makes the quota store read line profiles afresh: any saved or deleted row a profile is
made of. (``bulk_create`` and ``update()`` send no signal: code that changes these rows in
bulk calls ``profiles_forget`` itself.)"""

from django.db.models.signals import post_delete, post_save

from charging.models import Bucket, LineRatePlan, NodeLimit
from charging.quota.profiles import profiles_forget
from enterprise.models import CostCentre, SteeringRule
from portal.models import Line


def _forget(sender, **kwargs) -> None:
    profiles_forget()


def connect() -> None:
    for model in (Bucket, NodeLimit, Line, LineRatePlan, CostCentre, SteeringRule):
        post_save.connect(_forget, sender=model, dispatch_uid=f"quota-profiles-{model.__name__}-saved")
        post_delete.connect(_forget, sender=model, dispatch_uid=f"quota-profiles-{model.__name__}-deleted")
