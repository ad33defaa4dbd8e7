import contextlib
import os
import threading

from django.core.management.base import BaseCommand

from charging.credentials import network_credential_revoke
from portal.demo.data import mediation_key
from portal.demo.simulator import usage_simulate
from portal.models import Line


class Command(BaseCommand):
    help = "Keeps posting realistic usage records to a running portal's usage API (Ctrl-C stops)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--rate", type=float, default=3.0, help="records per second, on average")
        parser.add_argument("--count", type=int, default=0, help="stop after this many records (0: never)")
        parser.add_argument(
            "--key",
            default=os.environ.get("NETWORK_KEY", ""),
            help="a network key with the usage scope (default: $NETWORK_KEY; without one, a key is issued for "
            "this run and revoked when it ends)",
        )

    def handle(self, *args, url, rate, count, key, **options):
        lines = Line.objects.active()
        focus = list(lines.filter(billing_account__customer__kind="person").values_list("msisdn", flat=True))
        others = list(lines.filter(billing_account__customer__kind="company").values_list("msisdn", flat=True))
        if not focus and not others:
            self.stderr.write("No active lines: load the demo data first (manage.py demo_load).")
            return
        sent = 0
        stop = threading.Event()

        def report(record, status):
            nonlocal sent
            sent += 1
            if options["verbosity"] > 1:
                self.stdout.write(f"{status} {record['msisdn']} {record['service']} {record['quantity']}")
            if count and sent >= count:
                stop.set()

        own_key = not key
        key = key or mediation_key()
        self.stdout.write(f"Posting usage to {url} at about {rate}/s (Ctrl-C stops).")
        try:
            with contextlib.suppress(KeyboardInterrupt):
                usage_simulate(
                    base_url=url,
                    key=key,
                    focus_msisdns=focus or others,
                    other_msisdns=others,
                    rate=rate,
                    should_stop=stop.is_set,
                    on_result=report,
                )
        finally:
            if own_key:  # the run's own key ends with it
                network_credential_revoke(key_id=key.partition(".")[0])
        self.stdout.write(f"Posted {sent} records.")
