"""REST endpoints for online charging (sessions and single events) over ``charging.online``.

Each action is one view with an input and an output serializer. The body is checked by the
input serializer first (a malformed one answers 400 with DRF's errors per field); what the
engine refuses (``ChargingError``) answers with its status and a stable ``code``. A repeated
request gets the first answer (200 instead of 201 where a request creates something).
"""

from decimal import Decimal

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from charging.api.usage import MayPostUsage, source_of
from charging.events import event_charge, event_refund
from charging.grants import FinalUnitAction
from charging.models import ChargingRequest, ChargingSession
from charging.online import session_start, session_terminate, session_update
from charging.requests import ChargingError, event_key
from charging.units import Service, Zone

MAX_UNITS = 2**63 - 1  # the database's bigint
_SERVICES = ", ".join(Service.values)
_ZONES = ", ".join(Zone.values)


# --- Input ----------------------------------------------------------------------------------------
# Service and zone are plain strings: the engine checks them and answers code "invalid" for the
# field, the same as any other client of ``charging.online``.


class SessionStartInputSerializer(serializers.Serializer):
    session_id = serializers.CharField(max_length=100)
    msisdn = serializers.CharField(max_length=20)
    service = serializers.CharField(max_length=16, help_text=f"One of {_SERVICES}.")
    zone = serializers.CharField(max_length=16, default=Zone.HOME.value, help_text=f"One of {_ZONES}.")
    requested_units = serializers.IntegerField(min_value=0, max_value=MAX_UNITS)
    request_number = serializers.IntegerField(min_value=0, default=0, help_text="A session starts with 0.")


class SessionUpdateInputSerializer(serializers.Serializer):
    request_number = serializers.IntegerField(min_value=1, help_text="One more than the last request answered.")
    used_units = serializers.IntegerField(min_value=0, max_value=MAX_UNITS)
    requested_units = serializers.IntegerField(min_value=0, max_value=MAX_UNITS, default=0)


class SessionTerminateInputSerializer(serializers.Serializer):
    request_number = serializers.IntegerField(min_value=1, help_text="One more than the last request answered.")
    used_units = serializers.IntegerField(min_value=0, max_value=MAX_UNITS)


class EventChargeInputSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=100)
    msisdn = serializers.CharField(max_length=20)
    service = serializers.CharField(max_length=16, help_text=f"One of {_SERVICES}.")
    units = serializers.IntegerField(min_value=1, max_value=MAX_UNITS, default=1)
    zone = serializers.CharField(max_length=16, default=Zone.HOME.value, help_text=f"One of {_ZONES}.")
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


class ChargingErrorSerializer(serializers.Serializer):
    result = serializers.CharField(help_text='Always "error".')
    code = serializers.CharField(help_text="Stable for clients, e.g. unknown_line, out_of_order.")
    message = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The input at fault, when there is one.")


_REFUSED = OpenApiResponse(
    ChargingErrorSerializer,
    description="A malformed body (DRF's errors per field: {field: [message]}) or a request the engine "
    "refuses (code invalid, unknown_line, line_inactive, ...). Nothing changed.",
)
_CONFLICT = OpenApiResponse(
    ChargingErrorSerializer, description="Out of order, or the session is closed. Nothing changed."
)
_UNKNOWN = OpenApiResponse(ChargingErrorSerializer, description="Unknown session or event. Nothing changed.")
_FORBIDDEN = OpenApiResponse(description="Not network mediation.")


# --- Views ----------------------------------------------------------------------------------------


class OnlineChargingView(APIView):
    """Network mediation only; a ``ChargingError`` becomes its status and stable code."""

    permission_classes = [MayPostUsage]
    parser_classes = [JSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, ChargingError):
            return Response(exc.as_answer(), status=exc.status)
        return super().handle_exception(exc)


def _valid(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class SessionStartView(OnlineChargingView):
    """Opens a session and grants up to the requested units (the answer says how many)."""

    @extend_schema(
        operation_id="charging_session_start",
        request=SessionStartInputSerializer,
        responses={
            201: SessionAnswerSerializer,
            200: OpenApiResponse(SessionAnswerSerializer, description="A repeat: the first answer, nothing changed."),
            400: _REFUSED,
            403: _FORBIDDEN,
        },
    )
    def post(self, request):
        data = _valid(SessionStartInputSerializer, request)
        source = source_of(request)
        repeat = ChargingSession.objects.filter(source=source, session_id=data["session_id"]).exists()
        answer = session_start(**data, source=source)
        return Response(
            SessionAnswerSerializer(answer).data, status=status.HTTP_200_OK if repeat else status.HTTP_201_CREATED
        )


class SessionUpdateView(OnlineChargingView):
    """Settles what the session used since its last grant and grants more if asked."""

    @extend_schema(
        operation_id="charging_session_update",
        request=SessionUpdateInputSerializer,
        responses={
            200: OpenApiResponse(SessionAnswerSerializer, description="Settled; a repeat gets the first answer."),
            400: _REFUSED,
            403: _FORBIDDEN,
            404: _UNKNOWN,
            409: _CONFLICT,
        },
    )
    def post(self, request, session_id: str):
        data = _valid(SessionUpdateInputSerializer, request)
        answer = session_update(session_id=session_id, **data, source=source_of(request))
        return Response(SessionAnswerSerializer(answer).data)


class SessionTerminateView(OnlineChargingView):
    """Settles the final usage and releases whatever was granted but not used."""

    @extend_schema(
        operation_id="charging_session_terminate",
        request=SessionTerminateInputSerializer,
        responses={
            200: OpenApiResponse(
                SessionAnswerSerializer, description="Settled and released; a repeat gets the first answer."
            ),
            400: _REFUSED,
            403: _FORBIDDEN,
            404: _UNKNOWN,
            409: _CONFLICT,
        },
    )
    def post(self, request, session_id: str):
        data = _valid(SessionTerminateInputSerializer, request)
        answer = session_terminate(session_id=session_id, **data, source=source_of(request))
        return Response(SessionAnswerSerializer(answer).data)


class EventChargeView(OnlineChargingView):
    """Charges a single event (an SMS, a content purchase at its price) whole, or not at all."""

    @extend_schema(
        operation_id="charging_event_charge",
        request=EventChargeInputSerializer,
        responses={
            201: EventAnswerSerializer,
            200: OpenApiResponse(EventAnswerSerializer, description="A repeat: the first answer, nothing changed."),
            400: _REFUSED,
            402: OpenApiResponse(
                ChargingErrorSerializer,
                description="Not enough money (insufficient_balance) or a limit reached (limit_reached): "
                "charged whole or not at all. Nothing changed.",
            ),
            403: _FORBIDDEN,
        },
    )
    def post(self, request):
        data = _valid(EventChargeInputSerializer, request)
        source = source_of(request)
        repeat = ChargingRequest.objects.filter(key=event_key(source, data["event_id"])).exists()
        answer = event_charge(**data, source=source)
        return Response(
            EventAnswerSerializer(answer).data, status=status.HTTP_200_OK if repeat else status.HTTP_201_CREATED
        )


class EventRefundView(OnlineChargingView):
    """Gives back what a single event took: allowance units, money and limit usage. Once per event."""

    @extend_schema(
        operation_id="charging_event_refund",
        request=EventRefundInputSerializer,
        responses={
            200: OpenApiResponse(RefundAnswerSerializer, description="Refunded; a repeat gets the first answer."),
            400: _REFUSED,
            403: _FORBIDDEN,
            404: _UNKNOWN,
        },
    )
    def post(self, request, event_id: str):
        data = _valid(EventRefundInputSerializer, request)
        answer = event_refund(event_id=event_id, reason=data["reason"], actor=request.user, source=source_of(request))
        return Response(RefundAnswerSerializer(answer).data)
