"""The call-centre workspace for accounts: find a customer by name, e-mail or MSISDN."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from charging.models import Bucket, MoneyBalance
from charging.requests import ChargingError
from charging.selectors import account_has_money
from charging.services import money_adjust
from enterprise.selectors import customer_login_refusal
from portal.admin.profile_inputs import ProfileInputAdmin
from portal.admin.read_only import ReadOnlyAdmin, ReadOnlyInline
from portal.admin.reasons import ReasonForm, with_reason
from portal.models import AuditEntry, BillingAccount, ContactPreferences, Customer, Line, LineHold, Notification
from portal.services import HoldError, line_hold_lift, line_hold_place


class ContactPreferencesInline(admin.StackedInline):
    model = ContactPreferences
    can_delete = False


class BillingAccountForm(forms.ModelForm):
    """An account's currency is what its money and ledger are counted in: it changes only
    while the account has neither."""

    class Meta:
        model = BillingAccount
        fields = ["number", "kind", "currency"]  # the admin names the fields it shows

    def clean_currency(self):
        currency = self.cleaned_data["currency"]
        account = self.instance
        if account.pk and currency != account.currency and account_has_money(billing_account_id=account.pk):
            raise forms.ValidationError(
                f"The currency stays {account.currency}: the account holds money or has ledger entries."
            )
        return currency


class BillingAccountInline(admin.TabularInline):
    model = BillingAccount
    form = BillingAccountForm
    extra = 0
    fields = ["number", "kind", "currency", "credit_limit"]
    readonly_fields = ["credit_limit"]
    show_change_link = True


class LineInline(admin.TabularInline):
    model = Line
    extra = 0
    fields = ["msisdn", "device_label", "state"]
    readonly_fields = ["state"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).with_standing_holds()

    @admin.display(description="State")
    def state(self, line: Line) -> str:
        return line.holds_display() if line.pk else ""


class LineHoldInline(ReadOnlyInline):
    """A line's holds, standing and lifted: placed and lifted by the actions, which audit them."""

    model = LineHold
    fields = ["cause", "reason", "placed_by", "placed_at", "lifted_by", "lifted_at", "lifted_reason"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("placed_by", "lifted_by")


class MoneyBalanceInline(admin.StackedInline):
    model = MoneyBalance
    can_delete = False
    # Money moves only through the ledger (the adjust action); the cap is the customer's own choice.
    readonly_fields = ["amount", "reserved", "period_spent", "period_start"]
    extra = 0


class BucketInline(admin.TabularInline):
    model = Bucket
    extra = 0
    can_delete = False
    fields = ["name", "unit", "remaining", "initial", "priority", "valid_from", "valid_until"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False  # allowances are granted through services, with a ledger entry


class CustomerForm(forms.ModelForm):
    """A customer's login sees all its accounts: it is set once, to a login tied to nothing
    else (``customer_login_refusal``)."""

    class Meta:
        model = Customer
        fields = ["kind", "name", "email", "user", "time_zone"]  # the admin names the fields it shows

    def clean(self):
        cleaned = super().clean()
        user = cleaned.get("user")
        if user is not None:
            customer = Customer(pk=self.instance.pk, kind=cleaned.get("kind", self.instance.kind))
            refusal = customer_login_refusal(customer=customer, user=user)
            if refusal:
                self.add_error("user", refusal)
        return cleaned


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerForm
    list_display = ["name", "kind", "email", "user", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "email", "billing_accounts__lines__msisdn", "billing_accounts__number"]
    inlines = [ContactPreferencesInline, BillingAccountInline]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.user_id is not None:
            # Another login would see every account and line of this customer.
            return [*self.readonly_fields, "user"]
        return self.readonly_fields


class MoneyAdjustForm(ReasonForm):
    amount = forms.DecimalField(
        max_digits=12, decimal_places=4, help_text="Positive credits the customer, negative debits them."
    )
    field_order = ["amount", "reason"]

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("An adjustment of nothing changes nothing.")
        return amount


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    form = BillingAccountForm
    list_display = ["number", "customer", "kind", "currency", "credit_limit"]
    list_filter = ["kind", "currency"]
    search_fields = ["number", "customer__name", "customer__email", "lines__msisdn"]
    readonly_fields = ["credit_limit"]
    inlines = [MoneyBalanceInline, LineInline]
    list_select_related = ["customer"]
    actions = ["adjust_money"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # Moving an account to another customer would show its lines to that customer's login.
        return [*self.readonly_fields, "customer"]

    @with_reason("Credit or debit money", form_class=MoneyAdjustForm, confirm="Post to the ledger")
    def adjust_money(self, request, queryset, amount, reason):
        try:
            with transaction.atomic():
                for account in queryset:
                    money_adjust(billing_account=account, amount=amount, reason=reason, actor=request.user)
        except ChargingError as error:
            self.message_user(request, f"Nothing was adjusted: {error.message}.", messages.ERROR)
            return
        self.message_user(request, f"Adjusted {queryset.count()} account(s).", messages.SUCCESS)


class StandingHoldFilter(admin.SimpleListFilter):
    title = "standing hold"
    parameter_name = "hold"

    def lookups(self, request, model_admin):
        return [("none", "None"), *LineHold.Cause.choices]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.active()
        if self.value() in LineHold.Cause.values:
            return queryset.filter(pk__in=LineHold.objects.standing().filter(cause=self.value()).values("line_id"))
        return queryset


class LineHoldPlaceForm(ReasonForm):
    cause = forms.ChoiceField(choices=LineHold.Cause.choices)
    field_order = ["cause", "reason"]


class LineHoldLiftForm(ReasonForm):
    cause = forms.ChoiceField(
        choices=[c for c in LineHold.Cause.choices if c[0] != LineHold.Cause.TERMINATED],
        help_text="Only this cause's hold is lifted; others stay.",
    )
    field_order = ["cause", "reason"]


@admin.register(Line)
class LineAdmin(ProfileInputAdmin):
    list_display = ["msisdn", "device_label", "state", "billing_account"]
    list_filter = [StandingHoldFilter]
    search_fields = ["msisdn", "device_label", "billing_account__customer__name", "billing_account__customer__email"]
    inlines = [LineHoldInline, BucketInline]
    list_select_related = ["billing_account"]
    raw_id_fields = ["billing_account"]
    actions = ["place_hold", "lift_hold"]

    @with_reason("Place a hold", form_class=LineHoldPlaceForm)
    def place_hold(self, request, queryset, cause, reason):
        self._holds_change(request, queryset, line_hold_place, "Place a hold", cause=cause, reason=reason)

    @with_reason("Lift a hold", form_class=LineHoldLiftForm)
    def lift_hold(self, request, queryset, cause, reason):
        self._holds_change(request, queryset, line_hold_lift, "Lift a hold", cause=cause, reason=reason)

    def _holds_change(self, request, queryset, change, title: str, **details) -> None:
        changed = 0
        for line in queryset:
            try:
                change(line=line, actor=request.user, **details)
            except HoldError as exc:
                self.message_user(request, f"Not done: {exc}.", messages.ERROR)
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{title}: done on {changed} line(s).", messages.SUCCESS)

    def get_queryset(self, request):
        return super().get_queryset(request).with_standing_holds()

    @admin.display(description="State")
    def state(self, line: Line) -> str:
        return line.holds_display() if line.pk else ""

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # A line's allowances are in its account's ledger: it does not move to another account.
        return [*self.readonly_fields, "billing_account"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Messages sent to customers: a record of touch-points, not edited here."""

    list_display = ["created_at", "customer", "channel", "status", "kind", "subject", "sent_at"]
    list_filter = ["status", "channel", "kind"]
    search_fields = ["customer__name", "customer__email", "subject"]
    date_hierarchy = "created_at"
    list_select_related = ["customer"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail: written by the services that change what a customer can use, never here."""

    list_display = ["created_at", "actor", "action", "target_label", "reason"]
    list_filter = ["action"]
    search_fields = ["target_label", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
