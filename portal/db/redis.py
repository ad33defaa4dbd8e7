"""The process's Redis connection (for the quota store and the live watch counts).

``REDIS_URL`` names it; one client per URL, whose pool reconnects in a forked child.
"""

from functools import cache

import redis
from django.conf import settings


@cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def client() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def client_if_configured() -> redis.Redis | None:
    """The client, or None in the embedded mode (no ``REDIS_URL``)."""
    return client() if settings.REDIS_URL else None
