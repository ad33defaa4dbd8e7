"""Paging of the API's lists."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

from portal.api.fields import WholeNumberField


class Pages(LimitOffsetPagination):
    """DRF's limit and offset, refusing (400) what is not a whole number where DRF would quietly
    fall back to the default, and cut to a largest page: a 20-digit limit is past any
    database's LIMIT (PostgreSQL's is a bigint) and would fail the query."""

    max_limit = 500

    def get_limit(self, request):
        self._checked(request, self.limit_query_param, least=1)
        return super().get_limit(request)

    def get_offset(self, request):
        self._checked(request, self.offset_query_param, least=0)
        return super().get_offset(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        least = {self.limit_query_param: 1, self.offset_query_param: 0}
        for parameter in parameters:
            parameter["schema"]["minimum"] = least[parameter["name"]]
        return parameters

    def _checked(self, request, name: str, *, least: int) -> None:
        if name not in request.query_params:
            return
        field = WholeNumberField(min_value=least)
        field.bind(name, None)
        try:
            field.run_validation(request.query_params[name])
        except ValidationError as error:
            raise ValidationError({name: error.detail}) from None
