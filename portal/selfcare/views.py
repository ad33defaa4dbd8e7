"""Consumer self-care pages. Views check access, call selectors and render."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from charging.selectors import line_balance_snapshot, line_recent_usage, line_usage_by_hour
from charging.units import Unit, format_units
from enterprise.selectors import cost_centres_managed_by, lines_visible_to
from portal.selectors import lines_owned_by


def _line_card(line) -> dict:
    usage = line_usage_by_hour(line=line, unit=Unit.BYTES)
    peak = max((h["units"] for h in usage), default=0) or 1
    chart = []
    for index, hour in enumerate(usage):
        height = round(100 * hour["units"] / peak)
        label = f"{hour['hour'][11:16]}: {format_units(hour['units'], Unit.BYTES)}"
        chart.append({"x": index * 10, "y": 100 - height, "height": height, "label": label})
    return {
        "line": line,
        "snapshot": line_balance_snapshot(line_id=line.pk),
        "recent_usage": line_recent_usage(line=line, limit=5),
        "usage_chart": chart,
    }


@login_required
def dashboard(request):
    cards = [_line_card(line) for line in lines_owned_by(user=request.user)]
    managed = cost_centres_managed_by(user=request.user)
    return render(request, "portal/dashboard.html", {"cards": cards, "managed": managed})


@login_required
def line_detail(request, line_id: int):
    line = get_object_or_404(lines_visible_to(user=request.user).select_related("billing_account"), pk=line_id)
    return render(request, "portal/line_detail.html", {"card": _line_card(line)})
