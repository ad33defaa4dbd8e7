"""The call-centre workspace for accounts: find a customer by name, e-mail or MSISDN."""

from django.contrib import admin

from charging.models import Bucket, MoneyBalance
from portal.models import BillingAccount, ContactPreferences, Customer, Line, Notification


class ContactPreferencesInline(admin.StackedInline):
    model = ContactPreferences
    can_delete = False


class BillingAccountInline(admin.TabularInline):
    model = BillingAccount
    extra = 0
    fields = ["number", "kind", "currency", "credit_limit"]
    readonly_fields = ["credit_limit"]
    show_change_link = True


class LineInline(admin.TabularInline):
    model = Line
    extra = 0
    fields = ["msisdn", "device_label", "status"]
    show_change_link = True


class MoneyBalanceInline(admin.StackedInline):
    model = MoneyBalance
    can_delete = False
    readonly_fields = ["amount"]
    extra = 0


class BucketInline(admin.TabularInline):
    model = Bucket
    extra = 0
    can_delete = False
    fields = ["name", "unit", "remaining", "initial", "priority", "valid_from", "valid_until"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # allowances are granted through services, with a ledger entry


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "email", "user", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "email", "billing_accounts__lines__msisdn", "billing_accounts__number"]
    inlines = [ContactPreferencesInline, BillingAccountInline]
    autocomplete_fields = ["user"]


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "kind", "currency", "credit_limit"]
    list_filter = ["kind", "currency"]
    search_fields = ["number", "customer__name", "customer__email", "lines__msisdn"]
    readonly_fields = ["credit_limit"]
    inlines = [MoneyBalanceInline, LineInline]
    list_select_related = ["customer"]


@admin.register(Line)
class LineAdmin(admin.ModelAdmin):
    list_display = ["msisdn", "device_label", "status", "billing_account"]
    list_filter = ["status"]
    search_fields = ["msisdn", "device_label", "billing_account__customer__name", "billing_account__customer__email"]
    inlines = [BucketInline]
    list_select_related = ["billing_account"]
    raw_id_fields = ["billing_account"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Messages sent to customers: a record of touch-points, not edited here."""

    list_display = ["created_at", "customer", "channel", "status", "kind", "subject", "sent_at"]
    list_filter = ["status", "channel", "kind"]
    search_fields = ["customer__name", "customer__email", "subject"]
    date_hierarchy = "created_at"
    list_select_related = ["customer"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
