"""Paging of the API's lists."""

from rest_framework.pagination import LimitOffsetPagination


class Pages(LimitOffsetPagination):
    """DRF's limit and offset, with a largest page: a 20-digit limit is past any database's
    LIMIT (PostgreSQL's is a bigint) and would fail the query."""

    max_limit = 500
