"""REST endpoints for online charging (sessions and single events) over ``charging.online``.

Each action is one view with an input and an output serializer. The body is checked by the
input serializer first (a malformed one answers 400, naming the field); what the engine
refuses (``ChargingError``) answers with its status and a stable ``code``, in the API's one
error body. A repeated request gets exactly the first answer, status and body, even when it
arrives at the same moment as the first.
"""

from decimal import Decimal

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from charging.api.network import NetworkView, source_of
from charging.events import event_charge, event_refund
from charging.grants import FinalUnitAction
from charging.models import ChargingSession, NetworkCredential
from charging.online import session_start, session_terminate, session_update
from charging.requests import ANSWER_STATUS
from charging.units import Service, Zone
from portal.api.errors import ErrorSerializer
from portal.api.fields import MAX_ID, WholeNumberField

MAX_UNITS = MAX_ID  # the database's bigint
MAX_REQUEST_NUMBER = 2**31 - 1  # what a session's request number column holds


# --- Input ----------------------------------------------------------------------------------------


class SessionStartInputSerializer(serializers.Serializer):
    session_id = serializers.CharField(max_length=100)
    msisdn = serializers.CharField(max_length=20)
    service = serializers.ChoiceField(choices=Service.choices)
    zone = serializers.ChoiceField(choices=Zone.choices, default=Zone.HOME.value)
    requested_units = WholeNumberField(min_value=0, max_value=MAX_UNITS)
    request_number = WholeNumberField(
        min_value=0, max_value=MAX_REQUEST_NUMBER, default=0, help_text="A session starts with 0."
    )


class SessionUpdateInputSerializer(serializers.Serializer):
    request_number = WholeNumberField(
        min_value=1, max_value=MAX_REQUEST_NUMBER, help_text="One more than the last request answered."
    )
    used_units = WholeNumberField(min_value=0, max_value=MAX_UNITS)
    requested_units = WholeNumberField(min_value=0, max_value=MAX_UNITS, default=0)


class SessionTerminateInputSerializer(serializers.Serializer):
    request_number = WholeNumberField(
        min_value=1, max_value=MAX_REQUEST_NUMBER, help_text="One more than the last request answered."
    )
    used_units = WholeNumberField(min_value=0, max_value=MAX_UNITS)


class EventChargeInputSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=100)
    msisdn = serializers.CharField(max_length=20)
    service = serializers.ChoiceField(choices=Service.choices)
    units = WholeNumberField(min_value=1, max_value=MAX_UNITS, default=1)
    zone = serializers.ChoiceField(choices=Zone.choices, default=Zone.HOME.value)
    price = serializers.DecimalField(
        max_digits=18,
        decimal_places=4,
        coerce_to_string=True,
        min_value=Decimal(0),
        required=False,
        help_text="For a content purchase: the price of the item; no allowance covers it.",
    )


class EventRefundInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


# --- Output ---------------------------------------------------------------------------------------


def _money_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=4, coerce_to_string=True, **kwargs)


class SessionAnswerSerializer(serializers.Serializer):
    result = serializers.CharField()
    session_id = serializers.CharField()
    request_number = serializers.IntegerField()
    # A plain string, not an enum: a second "status" choice set beside UsageEvent's would need an
    # ENUM_NAME_OVERRIDES entry in the settings to keep the schema free of warnings.
    status = serializers.CharField(help_text=f"One of {', '.join(ChargingSession.Status.values)}.")
    granted_units = serializers.IntegerField(help_text="Units reserved for the session until the next report.")
    validity_seconds = serializers.IntegerField(help_text="How long the grant holds; 0 without a grant.")
    final_unit_action = serializers.ChoiceField(
        choices=[FinalUnitAction.TERMINATE, FinalUnitAction.REDIRECT, FinalUnitAction.RESTRICT],
        allow_null=True,
        help_text="What the network does when the granted units run out; null: ask again.",
    )
    throttled = serializers.BooleanField()
    used_units = serializers.IntegerField(help_text="Units settled by this request.")
    units_from_allowances = serializers.IntegerField()
    amount = _money_field(help_text="Money charged by this request.")
    answered_at = serializers.DateTimeField()


class EventAnswerSerializer(serializers.Serializer):
    result = serializers.CharField()
    event_id = serializers.CharField()
    line = serializers.IntegerField()
    service = serializers.CharField()
    units = serializers.IntegerField()
    units_from_allowances = serializers.IntegerField()
    amount = _money_field()
    limits = serializers.ListField(child=serializers.IntegerField(), help_text="Limits the units counted against.")
    charged_at = serializers.DateTimeField()


class RefundAnswerSerializer(serializers.Serializer):
    result = serializers.CharField()
    event_id = serializers.CharField()
    units_returned = serializers.IntegerField()
    amount_returned = _money_field()


_REFUSED = OpenApiResponse(
    ErrorSerializer,
    description="A malformed body, or a request the engine refuses (code invalid, unknown_line, line_inactive, "
    "used_exceeds_grant, ...), naming the field. Nothing changed.",
)
_CONFLICT = OpenApiResponse(ErrorSerializer, description="Out of order, or the session is closed. Nothing changed.")
_UNKNOWN = OpenApiResponse(ErrorSerializer, description="Unknown session or event. Nothing changed.")


# --- Views ----------------------------------------------------------------------------------------


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SessionStartView(NetworkView):
    """Opens a session and grants up to the requested units (the answer says how many)."""

    network_scope = NetworkCredential.Scope.SESSIONS

    @extend_schema(
        operation_id="charging_session_start",
        request=SessionStartInputSerializer,
        responses={
            201: OpenApiResponse(
                SessionAnswerSerializer, description="Granted. A repeat gets this first answer: 201, the same body."
            ),
            400: _REFUSED,
            409: _CONFLICT,
        },
    )
    def post(self, request):
        data = _valid(SessionStartInputSerializer, request)
        answer = session_start(**data, source=source_of(request))
        return Response(SessionAnswerSerializer(answer).data, status=ANSWER_STATUS["initial"])


class SessionUpdateView(NetworkView):
    """Settles what the session used since its last grant and grants more if asked."""

    network_scope = NetworkCredential.Scope.SESSIONS

    @extend_schema(
        operation_id="charging_session_update",
        request=SessionUpdateInputSerializer,
        responses={
            200: OpenApiResponse(
                SessionAnswerSerializer, description="Settled. A repeat gets this first answer: 200, the same body."
            ),
            400: _REFUSED,
            404: _UNKNOWN,
            409: _CONFLICT,
        },
    )
    def post(self, request, session_id: str):
        data = _valid(SessionUpdateInputSerializer, request)
        answer = session_update(session_id=session_id, **data, source=source_of(request))
        return Response(SessionAnswerSerializer(answer).data, status=ANSWER_STATUS["update"])


class SessionTerminateView(NetworkView):
    """Settles the final usage and releases whatever was granted but not used."""

    network_scope = NetworkCredential.Scope.SESSIONS

    @extend_schema(
        operation_id="charging_session_terminate",
        request=SessionTerminateInputSerializer,
        responses={
            200: OpenApiResponse(
                SessionAnswerSerializer,
                description="Settled and released. A repeat gets this first answer: 200, the same body.",
            ),
            400: _REFUSED,
            404: _UNKNOWN,
            409: _CONFLICT,
        },
    )
    def post(self, request, session_id: str):
        data = _valid(SessionTerminateInputSerializer, request)
        answer = session_terminate(session_id=session_id, **data, source=source_of(request))
        return Response(SessionAnswerSerializer(answer).data, status=ANSWER_STATUS["terminate"])


class EventChargeView(NetworkView):
    """Charges a single event (an SMS, a content purchase at its price) whole, or not at all."""

    network_scope = NetworkCredential.Scope.EVENTS

    @extend_schema(
        operation_id="charging_event_charge",
        request=EventChargeInputSerializer,
        responses={
            201: OpenApiResponse(
                EventAnswerSerializer, description="Charged. A repeat gets this first answer: 201, the same body."
            ),
            400: _REFUSED,
            402: OpenApiResponse(
                ErrorSerializer,
                description="Not enough money (insufficient_balance) or a limit reached (limit_reached): "
                "charged whole or not at all. Nothing changed.",
            ),
        },
    )
    def post(self, request):
        data = _valid(EventChargeInputSerializer, request)
        answer = event_charge(**data, source=source_of(request))
        return Response(EventAnswerSerializer(answer).data, status=ANSWER_STATUS["event"])


class EventRefundView(NetworkView):
    """Gives back what a single event took: allowance units, money and limit usage. Once per event."""

    network_scope = NetworkCredential.Scope.REFUNDS

    @extend_schema(
        operation_id="charging_event_refund",
        request=EventRefundInputSerializer,
        responses={
            200: OpenApiResponse(
                RefundAnswerSerializer, description="Refunded. A repeat gets this first answer: 200, the same body."
            ),
            400: _REFUSED,
            404: _UNKNOWN,
        },
    )
    def post(self, request, event_id: str):
        data = _valid(EventRefundInputSerializer, request)
        answer = event_refund(event_id=event_id, reason=data["reason"], source=source_of(request))
        return Response(RefundAnswerSerializer(answer).data, status=ANSWER_STATUS["refund"])
