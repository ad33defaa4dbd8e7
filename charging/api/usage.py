"""REST endpoints of the charging app (TM Forum vocabulary: usage)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from charging.models import UsageEvent
from charging.offline import RecordStatus, usage_batch_ingest
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
        event, created = usage_event_ingest(payload=dict(payload), source=source_of(request))
        event.refresh_from_db()
        body = UsageOutputSerializer(event).data
        if event.status == UsageEvent.Status.REJECTED:
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


def source_of(request) -> str:
    """Each feeding system has its own id space: the source is the posting account's name."""
    return request.user.get_username()[:50]


# --- Bulk (offline) usage -----------------------------------------------------------------------

BULK_MAX_RECORDS = 10_000


class UsageBulkInputSerializer(serializers.Serializer):
    """A batch of usage records, each shaped like a single record (see ``usage_create``)."""

    records = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        max_length=BULK_MAX_RECORDS,
        help_text=f"At most {BULK_MAX_RECORDS} records, each shaped like the body of usage_create.",
    )


class UsageDuplicateSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the record in the posted list.")
    external_id = serializers.CharField()
    id = serializers.IntegerField(source="event_id", help_text="The event stored first.")
    status = serializers.CharField(
        source="event_status", help_text="The stored event's status: received, charged or rejected."
    )


class UsageRejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the record in the posted list.")
    external_id = serializers.CharField()
    id = serializers.IntegerField(source="event_id", help_text="The rejected event, kept for replay.")
    errors = serializers.DictField(child=serializers.CharField(), help_text="The reason per field.")


class UsageBulkOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Records stored and queued for charging.")
    duplicate = serializers.IntegerField(help_text="Repeats of stored records: nothing changed.")
    rejected = serializers.IntegerField(help_text="Records kept as rejected, charged nothing.")
    accepted_ids = serializers.ListField(child=serializers.IntegerField())
    duplicates = UsageDuplicateSerializer(many=True)
    rejections = UsageRejectionSerializer(many=True)


class UsageBulkCreateView(APIView):
    permission_classes = [MayPostUsage]

    @extend_schema(
        operation_id="usage_bulk_create",
        request=UsageBulkInputSerializer,
        responses={
            202: OpenApiResponse(UsageBulkOutputSerializer, description="Stored; accepted records are charged soon."),
            400: OpenApiResponse(description="Not a list of at most 10,000 records (field `records`)."),
        },
    )
    def post(self, request):
        serializer = UsageBulkInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = usage_batch_ingest(payloads=serializer.validated_data["records"], source=source_of(request))
        by_status = {RecordStatus.ACCEPTED: [], RecordStatus.DUPLICATE: [], RecordStatus.REJECTED: []}
        for outcome in result.outcomes:
            by_status[outcome.status].append(outcome)
        body = {
            "accepted": result.accepted,
            "duplicate": result.duplicate,
            "rejected": result.rejected,
            "accepted_ids": [o.event_id for o in by_status[RecordStatus.ACCEPTED]],
            "duplicates": by_status[RecordStatus.DUPLICATE],
            "rejections": by_status[RecordStatus.REJECTED],
        }
        return Response(UsageBulkOutputSerializer(body).data, status=status.HTTP_202_ACCEPTED)
