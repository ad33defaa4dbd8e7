"""Bring-your-own-device steering: who pays for a usage of a company's line."""

from collections.abc import Iterable
from datetime import datetime, time

from django.utils import timezone

from enterprise.models import SteeringRule


def steering_payer(*, rules: Iterable[SteeringRule], service: str, zone: str, at: datetime) -> str:
    """The payer of the first rule, by priority, whose every condition matches; else the company."""
    local = timezone.localtime(at)
    for rule in sorted(rules, key=lambda r: (r.priority, r.pk or 0)):
        if rule.service and rule.service != service:
            continue
        if rule.zone and rule.zone != zone:
            continue
        if rule.weekdays and local.weekday() not in rule.weekdays:
            continue
        has_window = rule.time_from is not None and rule.time_to is not None
        if has_window and not _in_window(local.time(), rule.time_from, rule.time_to):
            continue
        return rule.payer
    return SteeringRule.Payer.CORPORATE


def _in_window(moment: time, start: time, end: time) -> bool:
    """[start, end) local time; a window whose end is not after its start wraps midnight."""
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end
