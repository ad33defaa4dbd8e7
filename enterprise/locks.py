"""Every lock the enterprise app takes, in one place.

django-mptt renumbers ``lft``/``rght`` across the whole tree on insert and move, and two such
writes racing corrupt it. All tree writes therefore serialise on one transaction-scoped
advisory lock per company (PostgreSQL); SQLite already serialises writers.
"""

from django.db import connection

_TREE_LOCK_NAMESPACE = 7001


def cost_centre_tree_lock(*, company_id: int) -> None:
    """Hold the company's tree lock until the surrounding transaction ends."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_TREE_LOCK_NAMESPACE, company_id])
