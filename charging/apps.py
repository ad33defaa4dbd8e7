from django.apps import AppConfig


class ChargingConfig(AppConfig):
    name = "charging"
    verbose_name = "Charging and ledger"

    def ready(self):
        from charging.quota import signals

        signals.connect()
