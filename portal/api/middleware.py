"""Requests under /api/ that no view answers still get the API's error body."""

from django.http import JsonResponse
from django.urls import is_valid_path

from portal.errors import error_body

API_PREFIX = "/api/"


class ApiErrorsMiddleware:
    """Under /api/: a NUL character in the path or the query is refused (400: PostgreSQL
    cannot compare text holding one), and an unknown route answers 404 with the error body
    instead of an HTML page. A path without its final slash is not redirected (a redirected
    POST loses its body): it is unknown. Sits before ``CommonMiddleware``, which redirects."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if not path.startswith(API_PREFIX):
            return self.get_response(request)
        if "\x00" in path or any("\x00" in key + "".join(values) for key, values in request.GET.lists()):
            return _error(400, "invalid", "NUL characters are not allowed in a URL.")
        if not path.endswith("/") and not is_valid_path(path, getattr(request, "urlconf", None)):
            return _not_found()
        response = self.get_response(request)
        if response.status_code == 404 and not response.get("Content-Type", "").startswith("application/json"):
            return _not_found()
        return response


def _not_found() -> JsonResponse:
    return _error(404, "not_found", "Not found.")


def _error(status: int, code: str, reason: str) -> JsonResponse:
    return JsonResponse(error_body(status=status, code=code, reason=reason), status=status)
