"""Refusals of the catalog's services, each with a stable code and the input field it concerns."""


class CatalogError(Exception):
    def __init__(self, message: str, *, code: str, field: str = "non_field_errors"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    def as_dict(self) -> dict[str, list[str]]:
        return {self.field: [self.message], "code": self.code}
