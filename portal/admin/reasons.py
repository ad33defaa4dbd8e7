"""Admin actions that ask the agent why before they act; the reason is recorded with them."""

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=200, help_text="Recorded with your name.")


def with_reason(description: str, *, form_class: type[forms.Form] = ReasonForm, confirm: str = "Confirm"):
    """An admin action that first shows ``form_class`` (at least a reason), then runs with
    its cleaned fields as keyword arguments: ``action(modeladmin, request, queryset, reason=...)``."""

    def decorate(function):
        def action(modeladmin, request, queryset):
            form = form_class(request.POST if "confirm" in request.POST else None)
            if form.is_valid():
                return function(modeladmin, request, queryset, **form.cleaned_data)
            context = {
                **modeladmin.admin_site.each_context(request),
                "title": description,
                "queryset": queryset,
                "action": function.__name__,
                "form": form,
                "confirm": confirm,
                "opts": modeladmin.model._meta,
            }
            return TemplateResponse(request, "admin/reason.html", context)

        action.__name__ = function.__name__
        return admin.action(description=description)(action)

    return decorate
