from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog and orders"

    def ready(self):
        # Models are ready only now; services queue these tasks by name (``portal.task_queue``).
        from catalog import tasks  # noqa: F401
