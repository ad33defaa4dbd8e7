"""REST endpoints of the charging app (TM Forum vocabulary: usage), for the network alone.

A record that fails its checks is kept as rejected (so it can be replayed) and answered 400
with the error body; a repeat of a record (same source and external id) gets the first
answer: 201 with the record as it stands, or the same refusal.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from charging.api.network import NetworkView, source_of
from charging.models import NetworkCredential, UsageEvent
from charging.offline import RecordStatus, usage_batch_ingest
from charging.units import Service, Unit, Zone, usage_quantity_limits
from charging.usage_events import usage_event_ingest
from portal.api.errors import ErrorSerializer
from portal.errors import error_body


class UsageInputSerializer(serializers.Serializer):
    """Documents the record's shape; checking happens in the service so rejects are kept."""

    external_id = serializers.CharField(max_length=100, help_text="The network's unique id of the record.")
    msisdn = serializers.CharField(max_length=20)
    service = serializers.ChoiceField(choices=Service.choices)
    zone = serializers.ChoiceField(choices=Zone.choices, required=False, help_text="Default: home.")
    unit = serializers.ChoiceField(choices=Unit.choices, required=False, help_text="The service's unit, if given.")
    quantity = serializers.IntegerField(
        min_value=1,
        help_text="Whole units of the service's unit. At most, per record: "
        + ", ".join(f"{service} {limit:,}" for service, limit in usage_quantity_limits().items())
        + " (CHARGING_MAX_UNITS).",
    )
    occurred_at = serializers.DateTimeField(required=False, help_text="With a time zone offset; default: now.")


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


class UsageCreateView(NetworkView):
    network_scope = NetworkCredential.Scope.USAGE

    @extend_schema(
        operation_id="usage_create",
        request=UsageInputSerializer,
        responses={
            201: OpenApiResponse(
                UsageOutputSerializer,
                description="Stored and queued for charging. A repeat (same external id) gets the same status "
                "with the record as it stands now; nothing changes.",
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="Rejected and kept for replay, with the reason per field (or a body that is not "
                "a JSON object). A repeat gets the same answer.",
            ),
        },
    )
    def post(self, request):
        if not isinstance(request.data, dict):
            return Response(
                error_body(status=400, code="invalid", reason="A usage record is a JSON object."), status=400
            )
        event, _ = usage_event_ingest(payload=request.data, source=source_of(request))
        event.refresh_from_db()
        if event.status == UsageEvent.Status.REJECTED:
            return Response(rejection_body(event), status=status.HTTP_400_BAD_REQUEST)
        return Response(UsageOutputSerializer(event).data, status=status.HTTP_201_CREATED)


def rejection_body(event: UsageEvent) -> dict:
    errors = {field: [reason] for field, reason in event.errors.items()}
    field, reasons = next(iter(errors.items()))
    return error_body(
        status=400,
        code="invalid",
        reason=reasons[0],
        message=f"Kept as rejected record {event.pk}, for replay: {event.reason}",
        field=field,
        errors=errors,
    )


# --- Bulk (offline) usage -----------------------------------------------------------------------

BULK_MAX_RECORDS = 10_000


class UsageBulkInputSerializer(serializers.Serializer):
    """A batch of usage records, each shaped like a single record (see ``usage_create``)."""

    records = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        min_length=1,
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


class UsageBulkCreateView(NetworkView):
    network_scope = NetworkCredential.Scope.USAGE

    @extend_schema(
        operation_id="usage_bulk_create",
        request=UsageBulkInputSerializer,
        responses={
            202: OpenApiResponse(UsageBulkOutputSerializer, description="Stored; accepted records are charged soon."),
            400: OpenApiResponse(
                ErrorSerializer, description="Not a list of at most 10,000 records (field `records`)."
            ),
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
