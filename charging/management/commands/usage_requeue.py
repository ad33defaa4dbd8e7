"""Queues the usage records left uncharged now, as beat's sweep would: after a broker or
worker outage, an operator need not wait for the next sweep."""

from datetime import timedelta

from django.core.management.base import BaseCommand

from charging.offline import usage_backlog_queue, usage_events_requeue


class Command(BaseCommand):
    help = "Queues the usage records whose charging task was lost or could not be queued."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help="Seconds since a record was stored before it counts as lost (default CHARGING_REQUEUE_AFTER_SECONDS).",
        )

    def handle(self, *args, **options):
        after = timedelta(seconds=options["older_than"]) if options["older_than"] is not None else None
        backlog = usage_backlog_queue(limit=1_000_000)
        swept = usage_events_requeue(after=after)
        self.stdout.write(f"usage-requeue backlog={backlog} swept={swept}")
