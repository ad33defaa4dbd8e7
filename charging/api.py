"""REST endpoints of the charging app (TM Forum vocabulary: usage)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from charging.models import UsageEvent
from charging.services import usage_event_ingest
from charging.units import Service, Unit


class MayPostUsage(BasePermission):
    """Only network mediation (and agents with the right) may feed usage."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("charging.add_usageevent"))


class UsageInputSerializer(serializers.Serializer):
    """Documents the record's shape; checking happens in the service so rejects are kept."""

    external_id = serializers.CharField(max_length=100)
    msisdn = serializers.CharField(max_length=20)
    service = serializers.ChoiceField(choices=Service.choices)
    unit = serializers.ChoiceField(choices=Unit.choices, required=False)
    quantity = serializers.IntegerField(min_value=1)
    occurred_at = serializers.DateTimeField(required=False)


class UsageOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageEvent
        fields = [
            "id",
            "external_id",
            "msisdn",
            "service",
            "unit",
            "quantity",
            "occurred_at",
            "status",
            "errors",
            "units_from_buckets",
            "amount_charged",
            "received_at",
            "charged_at",
        ]


class UsageCreateView(APIView):
    permission_classes = [MayPostUsage]

    @extend_schema(
        operation_id="usage_create",
        request=UsageInputSerializer,
        responses={
            201: UsageOutputSerializer,
            200: OpenApiResponse(UsageOutputSerializer, description="A repeat: the first answer, nothing changed."),
            400: OpenApiResponse(UsageOutputSerializer, description="Rejected and kept, with the reason per field."),
        },
    )
    def post(self, request):
        payload = request.data if isinstance(request.data, dict) else {}
        event, created = usage_event_ingest(payload=dict(payload), source=_source_of(request))
        event.refresh_from_db()
        body = UsageOutputSerializer(event).data
        if event.status == UsageEvent.Status.REJECTED:
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def _source_of(request) -> str:
    """Each feeding system has its own id space: the source is the posting account's name."""
    return request.user.get_username()[:50]
