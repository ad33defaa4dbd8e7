from django import forms
from django.contrib import admin
from mptt.admin import MPTTModelAdmin

from enterprise.models import Company, CostCentre, ManagerAssignment, SteeringRule
from enterprise.selectors import manager_assignment_refusal
from portal.admin.profile_inputs import ProfileInputAdmin


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "customer"]
    search_fields = ["name"]

    def get_readonly_fields(self, request, obj=None):
        # Another customer's login would act for the company in the shop and be told its notices.
        return ["customer"] if obj is not None else []


@admin.register(CostCentre)
class CostCentreAdmin(MPTTModelAdmin):
    list_display = ["name", "kind", "company", "line"]
    list_filter = ["kind", "company"]
    search_fields = ["name", "line__msisdn"]
    raw_id_fields = ["line", "parent"]

    def has_add_permission(self, request):
        return False  # tree writes go through services, under the tree lock

    def has_change_permission(self, request, obj=None):
        return False


class ManagerAssignmentForm(forms.ModelForm):
    """A manager sees every line below their node: the admin refuses to give a node to a login
    that has no business with its company (``manager_assignment_refusal``)."""

    class Meta:
        model = ManagerAssignment
        fields = ["user", "node", "delegated_by"]

    def clean(self):
        cleaned = super().clean()
        user, node = cleaned.get("user"), cleaned.get("node")
        if user is not None and node is not None:
            refusal = manager_assignment_refusal(user=user, node=node, assignment_id=self.instance.pk)
            if refusal:
                raise forms.ValidationError(refusal)
        return cleaned


@admin.register(ManagerAssignment)
class ManagerAssignmentAdmin(admin.ModelAdmin):
    form = ManagerAssignmentForm
    list_display = ["user", "node", "delegated_by", "created_at"]
    raw_id_fields = ["node"]


@admin.register(SteeringRule)
class SteeringRuleAdmin(ProfileInputAdmin):
    """Who pays for a company line's usage (bring your own device): the first matching rule wins."""

    list_display = ["company", "priority", "name", "service", "zone", "time_from", "time_to", "payer"]
    list_display_links = ["name"]
    list_filter = ["company", "payer"]
    search_fields = ["name", "company__name"]
    ordering = ["company__name", "priority", "pk"]
    list_select_related = ["company"]
