"""Loading a company into the quota store when the engine starts, as a charging system loads
its subscribers' balances: every line's profile and a slice of every pool and limit, so first
requests need not ask the database."""

from charging.models import Bucket, NodeLimit
from charging.quota.profiles import profiles_warm
from charging.quota.slices import slices_warm
from enterprise.models import Company
from portal.models import Line


def company_warm(*, company: Company, service: str = "data", wanted: int = 1) -> tuple[int, int]:
    """Returns how many line profiles and slices were loaded."""
    profiles = profiles_warm(lines=list(Line.objects.filter(cost_centre__company=company)), service=service)
    slices = slices_warm(
        bucket_ids=set(Bucket.objects.filter(cost_centre__company=company).values_list("pk", flat=True)),
        limit_ids=set(NodeLimit.objects.filter(node__company=company).values_list("pk", flat=True)),
        wanted=wanted,
    )
    return profiles, slices
