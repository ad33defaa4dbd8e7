"""Charging in the call-centre workspace: usage (with replay), the ledger, tariffs."""

from django.contrib import admin, messages

from charging.models import Bucket, BucketDefinition, LedgerEntry, LineRatePlan, RatePlan, Tariff, UsageEvent
from charging.services import usage_event_replay


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "msisdn", "service", "quantity", "status", "received_at"]
    list_filter = ["status", "service", "source"]
    search_fields = ["external_id", "msisdn"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in UsageEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay the selected rejected records")
    def replay(self, request, queryset):
        results = [usage_event_replay(event=event) for event in queryset.filter(status=UsageEvent.Status.REJECTED)]
        accepted = sum(1 for e in results if e.status != UsageEvent.Status.REJECTED)
        self.message_user(request, f"{accepted} of {len(results)} records accepted on replay.", messages.INFO)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "billing_account", "kind", "bucket", "units", "amount", "reason", "actor"]
    list_filter = ["kind"]
    search_fields = ["billing_account__number", "reference", "usage_event__external_id"]
    list_select_related = ["billing_account", "bucket", "actor"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):
    list_display = ["name", "line", "unit", "remaining", "initial", "valid_until"]
    list_filter = ["unit"]
    search_fields = ["line__msisdn", "name"]
    readonly_fields = ["initial", "remaining"]
    raw_id_fields = ["line", "definition"]

    def has_add_permission(self, request):
        return False


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ["name", "service", "price", "per_units", "increment", "is_default"]
    list_filter = ["service"]


@admin.register(BucketDefinition)
class BucketDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "unit", "quantity", "validity_days", "priority"]


class TariffInline(admin.TabularInline):
    model = Tariff
    extra = 0


@admin.register(RatePlan)
class RatePlanAdmin(admin.ModelAdmin):
    list_display = ["name", "code"]
    search_fields = ["name", "code"]
    inlines = [TariffInline]


@admin.register(LineRatePlan)
class LineRatePlanAdmin(admin.ModelAdmin):
    list_display = ["line", "rate_plan", "assigned_at", "reference"]
    search_fields = ["line__msisdn", "reference"]
    raw_id_fields = ["line"]
