"""Serializer fields the API shares."""

import re

from rest_framework import serializers

MAX_ID = 2**63 - 1  # the database's bigint
_WHOLE = re.compile(r"-?[0-9]+")


class WholeNumberField(serializers.IntegerField):
    """DRF's integer, but a string must be ASCII digits: ``int()`` would take "１２" as 12."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not _WHOLE.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)
