"""Admin pages for records nobody edits by hand (the ledger, notices, sessions, history)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Every field shown, none editable; rows are neither added nor deleted here."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Related rows listed under their parent, none added, changed or removed here."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
