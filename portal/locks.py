"""Every row lock the accounts app takes, in one place.

A line is locked to change its holds, so changes to one line's holds follow one another and
each audit row's before and after are exact. A transaction that takes it takes it before any
lock of ``charging.locks``.
"""

from portal.models import Line


def line_lock(*, line_id: int) -> Line:
    return Line.objects.select_for_update().get(pk=line_id)
