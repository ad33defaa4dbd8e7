"""The OpenAPI schema's operations, each with the refusals it may give in the error body."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse

from portal.api.errors import ErrorSerializer

_WRITES = {"POST", "PUT", "PATCH"}
_REFUSABLE = _WRITES | {"DELETE"}  # a service may refuse any change, with or without a body


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, adding to every operation the refusals any endpoint may give and
    its own ``@extend_schema`` does not describe."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._refusals():
            if code not in responses:
                refusal = OpenApiResponse(ErrorSerializer, description=f"{description} Nothing changed.")
                responses[code] = self._get_response_for_code(refusal, code, direction=direction)
        return dict(sorted(responses.items()))

    def _refusals(self) -> list[tuple[str, str]]:
        refusals = []
        if self.method in _REFUSABLE or any(p["in"] == "query" for p in self._get_parameters()):
            refusals.append(("400", "Malformed input, or a change refused: the field at fault and the reason."))
        refusals.append(("401", "No credentials, or credentials that are not valid (see WWW-Authenticate)."))
        refusals.append(("403", "The credentials do not allow this."))
        if "{" in self.path:
            refusals.append(("404", "No such object, or not one the caller may see."))
        if self.method in _WRITES:
            refusals.append(("413", "A body larger than the server takes (DATA_UPLOAD_MAX_MEMORY_SIZE)."))
            refusals.append(("415", "A body that is not JSON (or a form, where the operation takes one)."))
        return refusals
