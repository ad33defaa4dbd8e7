"""One error body for the whole API (``portal.errors.error_body``), through DRF's exception
handler: refusals of the services, malformed input, missing or refused credentials, unknown
objects and methods."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import set_rollback

from portal.errors import Refusal, error_body

NON_FIELD = "non_field_errors"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"

    def __init__(self):
        super().__init__(f"A request body is at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes.")


def api_exception_handler(exc, context):
    """The ``EXCEPTION_HANDLER`` of the REST framework; anything else is a server error."""
    if isinstance(exc, Refusal):
        set_rollback()
        return Response(exc.as_error(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, SuspiciousOperation):  # too many fields, a malformed multipart body, ...
        exc = exceptions.ParseError(str(exc))
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return Response(api_error_body(exc), status=exc.status_code, headers=headers)


def api_error_body(exc: exceptions.APIException) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        errors = field_errors(exc.detail)
        field, reasons = next(iter(errors.items()), (NON_FIELD, ["Invalid input."]))
        return error_body(
            status=exc.status_code,
            code="invalid",
            reason=reasons[0],
            message="; ".join(f"{name}: {' '.join(texts)}" for name, texts in errors.items()),
            field="" if field == NON_FIELD else field,
            errors=errors,
        )
    detail = exc.detail
    code = getattr(detail, "code", None) or exc.default_code
    return error_body(status=exc.status_code, code=str(code), reason=str(detail))


def field_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as reasons per field, nested fields named with dots (``records.3``)."""
    if isinstance(detail, dict):
        errors: dict[str, list[str]] = {}
        for key, value in detail.items():
            errors.update(field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return errors
    if isinstance(detail, list):
        if not any(isinstance(item, dict | list) for item in detail):
            return {prefix or NON_FIELD: [str(item) for item in detail]} if detail else {}
        errors = {}
        for index, item in enumerate(detail):
            errors.update(field_errors(item, f"{prefix}.{index}" if prefix else str(index)))
        return errors
    return {prefix or NON_FIELD: [str(detail)]}


class ErrorSerializer(serializers.Serializer):
    """TM Forum's Error (TMF630), with the field at fault and the reasons per field."""

    type = serializers.CharField(help_text='Always "Error".')
    code = serializers.CharField(help_text="Stable for clients: invalid, not_authenticated, not_found, ...")
    reason = serializers.CharField(help_text="What is wrong, for a person to read.")
    message = serializers.CharField(help_text="The whole explanation (every field at fault).")
    status = serializers.CharField(help_text="The HTTP status, as a string.")
    field = serializers.CharField(required=False, help_text="The input at fault, when there is one.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="A malformed body: the reasons per field (nested fields named with dots).",
    )

    def get_fields(self):
        fields = super().get_fields()
        return {"@type": fields.pop("type"), **fields}
