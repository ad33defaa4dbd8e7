"""The audit trail: who changed what a customer can use or see, when, from what to what, and why.

Services that make such a change call ``audit_record`` inside their own transaction, so the
change and its record commit or roll back together. No signals: they miss ``.update()`` and
cannot know who acted or why.
"""

import json

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from portal.models import AuditEntry


def audit_record(
    *, actor: AbstractBaseUser | None, action: str, target: models.Model, before: dict, after: dict, reason: str
) -> AuditEntry:
    """Writes one audit row. ``actor``: the user who acted, or ``None`` for the system.
    Decimals, datetimes and the like in ``before``/``after`` are kept as their text."""
    if not reason.strip():
        raise ValueError("an audited change needs a reason")
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=ContentType.objects.get_for_model(target),
        target_id=str(target.pk),
        target_label=str(target)[:200],
        before=_json_safe(before),
        after=_json_safe(after),
        reason=reason,
    )


def _json_safe(values: dict) -> dict:
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))
