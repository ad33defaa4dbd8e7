from django.apps import AppConfig


class ChargingConfig(AppConfig):
    name = "charging"
    verbose_name = "Charging and ledger"

    def ready(self):
        # Models are ready only now; services queue these tasks by name (``portal.task_queue``).
        from charging import checks, tasks  # noqa: F401  (checks register themselves)
