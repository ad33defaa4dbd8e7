"""Refusals of the catalog's services, each with a stable code and the input field it concerns."""

from portal.errors import Refusal


class CatalogError(Refusal):
    def __init__(self, message: str, *, code: str, field: str = ""):
        super().__init__(code, message, field=field)
