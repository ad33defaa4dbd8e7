"""The manager's forms: a node's limit, and headroom moved to another node. Quantities are
typed in the unit people think in (data in MB, time in minutes) and stored exactly."""

from django import forms

from charging.node_figures import ENTRY_SCALE, UNIT_LABELS
from enterprise.models import CostCentre

UNIT_CHOICES = [(unit, f"{label} ({ENTRY_SCALE[unit][1]})") for unit, label in UNIT_LABELS.items()]
UNIT_HELP = "Data in MB, voice and video in minutes, SMS and content as counted."


class _Quantity:
    def units(self, field: str) -> int:
        """The typed quantity in the unit's smallest units."""
        scale, _ = ENTRY_SCALE[self.cleaned_data["unit"]]
        return self.cleaned_data[field] * scale


class NodeLimitForm(_Quantity, forms.Form):
    unit = forms.ChoiceField(choices=UNIT_CHOICES)
    limit = forms.IntegerField(min_value=0, max_value=10**12, label="New limit per month", help_text=UNIT_HELP)
    reason = forms.CharField(max_length=200, label="Why")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "limit-%s")  # both forms share a page: ids of their own
        super().__init__(*args, **kwargs)


class HeadroomMoveForm(_Quantity, forms.Form):
    unit = forms.ChoiceField(choices=UNIT_CHOICES)
    amount = forms.IntegerField(min_value=1, max_value=10**12, label="How much", help_text=UNIT_HELP)
    target = forms.ModelChoiceField(queryset=CostCentre.objects.none(), label="To")
    reason = forms.CharField(max_length=200, label="Why")

    def __init__(self, *args, targets, **kwargs):
        kwargs.setdefault("auto_id", "move-%s")
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = targets
        self.fields["target"].label_from_instance = lambda node: f"{node.name} ({node.get_kind_display()})"
