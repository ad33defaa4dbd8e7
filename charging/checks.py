"""System checks: the quota store is refused a Redis that would lose its log in a crash."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from redis.exceptions import RedisError

from charging.quota import quota_store_enabled, store


@register("quota_store")
def quota_store_redis_keeps_its_log(app_configs, **kwargs) -> list:
    if not quota_store_enabled() or settings.CHARGING_QUOTA_VOLATILE_REDIS:
        return []
    try:
        appendonly, appendfsync = store.persistence()
    except RedisError as error:
        return [Warning(f"Redis could not be asked how it keeps its data: {error}", id="charging.W001")]
    if appendonly != "yes":
        return [
            Error(
                "The quota store is on, but Redis keeps no append-only file: its log would not survive a crash.",
                hint="Run Redis with appendonly yes (appendfsync everysec or always); see the README.",
                id="charging.E001",
            )
        ]
    return []
