"""Charging in the call-centre workspace: usage (with replay), the ledger, tariffs."""

from django.contrib import admin, messages

from charging.models import (
    Bucket,
    BucketDefinition,
    ChargingSession,
    LedgerEntry,
    LineRatePlan,
    NodeLimit,
    RatePlan,
    Reservation,
    Tariff,
    TariffRate,
    ThresholdNotice,
    UsageEvent,
)
from charging.services import usage_event_replay
from portal.admin.profile_inputs import ProfileInputAdmin
from portal.admin.read_only import ReadOnlyAdmin, ReadOnlyInline
from portal.db.profile_epoch import profiles_forget


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
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "billing_account", "kind", "bucket", "units", "amount", "reason", "actor"]
    list_filter = ["kind"]
    search_fields = ["billing_account__number", "reference", "usage_event__external_id"]
    list_select_related = ["billing_account", "bucket", "actor"]


@admin.register(Bucket)
class BucketAdmin(ProfileInputAdmin):
    list_display = ["name", "line", "unit", "remaining", "initial", "valid_until"]
    list_filter = ["unit"]
    search_fields = ["line__msisdn", "name"]
    counter_fields = ["initial", "remaining", "reserved", "in_store"]
    readonly_fields = counter_fields
    raw_id_fields = ["line", "definition"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        # Charges move the counters while the form is open: write back only what it edits.
        editable = [f.name for f in Bucket._meta.concrete_fields if f.name not in [*self.counter_fields, "id"]]
        obj.save(update_fields=editable)
        profiles_forget()


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
class LineRatePlanAdmin(ProfileInputAdmin):
    list_display = ["line", "rate_plan", "assigned_at", "reference"]
    search_fields = ["line__msisdn", "reference"]
    raw_id_fields = ["line"]


# --- The charging engine: limits, sessions, notices, rates ---------------------------------------


@admin.register(NodeLimit)
class NodeLimitAdmin(ProfileInputAdmin):
    list_display = ["node", "unit", "period", "limit", "used", "reserved", "on_exceed"]
    list_filter = ["unit", "period", "on_exceed"]
    search_fields = ["node__name", "node__company__name"]
    list_select_related = ["node"]
    raw_id_fields = ["node"]
    # The counters move with every charge, under the limit's row lock: never from a form.
    counter_fields = ["used", "reserved", "in_store", "period_start"]
    readonly_fields = counter_fields

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Write back only what the form edits, so a charge made while the form was open keeps its count.
        editable = [f.name for f in NodeLimit._meta.concrete_fields if f.name not in [*self.counter_fields, "id"]]
        obj.save(update_fields=editable)
        profiles_forget()


class ReservationInline(ReadOnlyInline):
    model = Reservation
    fields = ["units", "status", "throttled", "granted_at", "expires_at"]


@admin.register(ChargingSession)
class ChargingSessionAdmin(ReadOnlyAdmin):
    """Opened by the network through the charging API; a record here."""

    list_display = ["session_id", "line", "service", "zone", "status", "used_units", "amount_charged", "opened_at"]
    list_filter = ["status", "service", "zone"]
    search_fields = ["session_id", "line__msisdn"]
    date_hierarchy = "opened_at"
    list_select_related = ["line"]
    inlines = [ReservationInline]


@admin.register(ThresholdNotice)
class ThresholdNoticeAdmin(ReadOnlyAdmin):
    """Deleting a notice would send it again: read-only."""

    list_display = ["created_at", "percent", "bucket", "limit", "used", "of", "period_start"]
    list_filter = ["percent"]
    search_fields = ["bucket__line__msisdn", "limit__node__name"]
    list_select_related = ["bucket", "limit__node"]


class TariffRateInline(admin.TabularInline):
    model = TariffRate
    extra = 0
    fields = ["zone", "band_start", "band_end", "tier_from", "price"]


TariffAdmin.inlines = [*TariffAdmin.inlines, TariffRateInline]
