"""Refusals, and the one error body every API answers with.

A service that will not do what it was asked raises a ``Refusal`` (or an app's subclass):
nothing was changed, and ``code`` is stable for clients. Every API answers a refusal, a
malformed request, a missing credential or an unknown object with TM Forum's Error body
(TMF630): ``code``, ``reason``, ``message`` and ``status`` (the HTTP status, as a string),
with two extensions: ``field``, the input at fault when there is one, and ``errors``, the
reasons per field of a malformed body.
"""


def error_body(
    *,
    status: int,
    code: str,
    reason: str,
    message: str = "",
    field: str = "",
    errors: dict[str, list[str]] | None = None,
) -> dict:
    body = {"@type": "Error", "code": code, "reason": reason, "message": message or reason, "status": str(status)}
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return body


class Refusal(Exception):
    """What a service refuses, with its stable code, the input at fault and the HTTP status."""

    def __init__(self, code: str, message: str, *, field: str = "", status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status

    def as_error(self) -> dict:
        return error_body(status=self.status, code=self.code, reason=self.message, field=self.field)
