from django.contrib import admin
from mptt.admin import MPTTModelAdmin

from enterprise.models import Company, CostCentre, ManagerAssignment, SteeringRule
from portal.admin.profile_inputs import ProfileInputAdmin


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "customer"]
    search_fields = ["name"]


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


@admin.register(ManagerAssignment)
class ManagerAssignmentAdmin(admin.ModelAdmin):
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
