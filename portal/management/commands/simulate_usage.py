import contextlib
import threading

from django.core.management.base import BaseCommand

from portal.demo.data import mediation_token
from portal.demo.simulator import usage_simulate
from portal.models import Line


class Command(BaseCommand):
    help = "Keeps posting realistic usage records to a running portal's usage API (Ctrl-C stops)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--rate", type=float, default=3.0, help="records per second, on average")
        parser.add_argument("--count", type=int, default=0, help="stop after this many records (0: never)")

    def handle(self, *args, url, rate, count, **options):
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

        self.stdout.write(f"Posting usage to {url} at about {rate}/s (Ctrl-C stops).")
        with contextlib.suppress(KeyboardInterrupt):
            usage_simulate(
                base_url=url,
                token=mediation_token(),
                focus_msisdns=focus or others,
                other_msisdns=others,
                rate=rate,
                should_stop=stop.is_set,
                on_result=report,
            )
        self.stdout.write(f"Posted {sent} records.")
