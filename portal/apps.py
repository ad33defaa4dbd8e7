from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Customer accounts"

    def ready(self):
        from portal.db import lookups  # noqa: F401  (registers ``__any``)
