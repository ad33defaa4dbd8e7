"""Charging in the call-centre workspace: usage (with replay), the ledger, tariffs."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

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
    UsageEventReplay,
)
from charging.requests import ChargingError
from charging.services import bucket_priority_change, bucket_validity_change
from charging.usage_events import usage_event_replay
from portal.admin.profile_inputs import ProfileInputAdmin
from portal.admin.read_only import ReadOnlyAdmin, ReadOnlyInline
from portal.admin.reasons import ReasonForm, with_reason
from portal.db.profile_epoch import profiles_forget


class UsageEventReplayInline(ReadOnlyInline):
    model = UsageEventReplay
    fields = ["replayed_at", "actor", "reason", "outcome"]


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "msisdn", "service", "quantity", "status", "received_at"]
    list_filter = ["status", "service", "source"]
    search_fields = ["external_id", "msisdn"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in UsageEvent._meta.fields]
    inlines = [UsageEventReplayInline]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @with_reason("Replay the selected rejected records", confirm="Replay")
    def replay(self, request, queryset, reason):
        rejected = queryset.filter(status=UsageEvent.Status.REJECTED)
        results = [usage_event_replay(event=event, actor=request.user, reason=reason) for event in rejected]
        accepted = sum(1 for e in results if e.status != UsageEvent.Status.REJECTED)
        self.message_user(request, f"{accepted} of {len(results)} records accepted on replay.", messages.INFO)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "billing_account", "kind", "bucket", "units", "amount", "reason", "actor"]
    list_filter = ["kind"]
    search_fields = ["billing_account__number", "reference", "usage_event__external_id"]
    list_select_related = ["billing_account", "bucket", "actor"]


class ValidityForm(ReasonForm):
    valid_until = forms.DateTimeField(help_text="The new end of the allowance's validity (local time).")
    field_order = ["valid_until", "reason"]


class PriorityForm(ReasonForm):
    priority = forms.IntegerField(min_value=0, max_value=32767, help_text="Lower is drawn from first.")
    field_order = ["priority", "reason"]


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):
    """Allowances are granted by services and change with their ledger: what one is (unit,
    holder, account, validity, priority) is read-only here, and the validity and priority an
    agent may change go through the actions, which record the change in the ledger."""

    list_display = ["name", "line", "cost_centre", "unit", "remaining", "initial", "priority", "valid_until"]
    list_filter = ["unit"]
    search_fields = ["line__msisdn", "name"]
    list_select_related = ["line", "cost_centre"]
    actions = ["change_validity", "change_priority"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Bucket._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The page of one bucket is for reading; the actions (no object) need the permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @with_reason("Change the validity", form_class=ValidityForm, confirm="Record in the ledger")
    def change_validity(self, request, queryset, valid_until, reason):
        self._change(request, queryset, bucket_validity_change, valid_until=valid_until, reason=reason)

    @with_reason("Change the priority", form_class=PriorityForm, confirm="Record in the ledger")
    def change_priority(self, request, queryset, priority, reason):
        self._change(request, queryset, bucket_priority_change, priority=priority, reason=reason)

    change_validity.allowed_permissions = change_priority.allowed_permissions = ("change",)

    def _change(self, request, queryset, service, **changes):
        try:
            with transaction.atomic():
                for bucket in queryset:
                    service(bucket=bucket, actor=request.user, **changes)
        except ChargingError as error:
            self.message_user(request, f"Nothing changed: {error.message}.", messages.ERROR)
            return
        self.message_user(request, f"Changed {queryset.count()} allowance(s).", messages.SUCCESS)


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
