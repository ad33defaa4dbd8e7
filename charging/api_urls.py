from django.urls import path

from charging.api import UsageCreateView

urlpatterns = [
    path("usage/", UsageCreateView.as_view(), name="usage-create"),
]
