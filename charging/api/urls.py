from django.urls import path

from charging.api.online import (
    EventChargeView,
    EventRefundView,
    SessionStartView,
    SessionTerminateView,
    SessionUpdateView,
)
from charging.api.usage import UsageBulkCreateView, UsageCreateView

urlpatterns = [
    path("usage/", UsageCreateView.as_view(), name="usage-create"),
    path("usage/bulk/", UsageBulkCreateView.as_view(), name="usage-bulk-create"),
    path("chargingSession/", SessionStartView.as_view(), name="charging-session-start"),
    path("chargingSession/<str:session_id>/update/", SessionUpdateView.as_view(), name="charging-session-update"),
    path(
        "chargingSession/<str:session_id>/terminate/",
        SessionTerminateView.as_view(),
        name="charging-session-terminate",
    ),
    path("chargingEvent/", EventChargeView.as_view(), name="charging-event-charge"),
    path("chargingEvent/<str:event_id>/refund/", EventRefundView.as_view(), name="charging-event-refund"),
]
