"""Admin pages for rows the quota store's line profiles are made of (allowances, limits,
rate plans, steering rules, lines): an agent's save or delete makes every profile be read
afresh, as the services that change those rows do."""

from django.contrib import admin

from portal.db.profile_epoch import profiles_forget


class ProfileInputAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        profiles_forget()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        profiles_forget()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        profiles_forget()
