"""The live bench: how fast charges reach open screens, with everyone watching at once.

The bench company (10,000 lines, 4 levels) is charged at a steady rate while 900 consumers
watch their own lines and 100 managers watch nodes of every level, the root included, through
server processes behind one address; then 1,000 screens watch one line; then a few screens
sit idle while a line page with a year of usage is timed. Runs in a throw-away database and
key prefix of its own. Needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL).
"""

import copy
import os
import time

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import override_settings

from portal.bench.live import (
    ConnectionsSampler,
    Figures,
    Screens,
    charge_steadily,
    figures,
    final_values,
    free_port,
    page_p95,
    pages_at_once,
    servers,
    year_of_usage,
)
from portal.bench.live_company import LiveCompany, live_company_build

SETTLE_SECONDS = 2.0  # after the last charge, before the screens' values are compared


class Command(BaseCommand):
    help = "Measures live pushes to many open screens; prints one summary line last."

    def add_arguments(self, parser):
        parser.add_argument("--lines", type=int, default=10_000)
        parser.add_argument("--fanout", default="10,10,10", help="Cost centres per level below the root.")
        parser.add_argument("--consumers", type=int, default=900)
        parser.add_argument("--managers", type=int, default=100)
        parser.add_argument("--processes", type=int, default=2, help="Server processes behind the one address.")
        parser.add_argument("--rate", type=float, default=1000, help="Charges a second.")
        parser.add_argument("--seconds", type=float, default=60)
        parser.add_argument("--drivers", type=int, default=2, help="Processes posting and charging the records.")
        parser.add_argument("--batch-seconds", type=float, default=0.25, help="Each driver posts a batch this often.")
        parser.add_argument("--stress-sockets", type=int, default=1000)
        parser.add_argument("--stress-rate", type=float, default=5)
        parser.add_argument("--stress-seconds", type=float, default=60)
        parser.add_argument("--idle-sockets", type=int, default=20)
        parser.add_argument("--idle-seconds", type=float, default=60)
        parser.add_argument("--page-records", type=int, default=365_000)
        parser.add_argument("--keep-db", action="store_true", help="Keep the bench database afterwards.")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("the live bench needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL")
        prefix = f"live-bench-{os.getpid()}"
        layers = copy.deepcopy(settings.CHANNEL_LAYERS)
        layers["default"]["CONFIG"]["prefix"] = prefix
        old_name = connection.settings_dict["NAME"]
        connection.settings_dict["TEST"]["NAME"] = prefix.replace("-", "_")
        connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            with override_settings(CHANNELS_PREFIX=prefix, CHANNEL_LAYERS=layers, CHARGING_QUOTA_STORE=False):
                self._run(options, prefix)
        finally:
            conn = redis.Redis.from_url(settings.REDIS_URL)
            for key in conn.scan_iter(f"{prefix}*", count=1000):
                conn.delete(key)
            if not options["keep_db"]:
                connection.creation.destroy_test_db(old_name, verbosity=0)

    def _run(self, options, prefix: str) -> None:
        say = self.stdout.write
        started = time.perf_counter()
        company = live_company_build(
            lines=options["lines"],
            fanout=tuple(int(width) for width in options["fanout"].split(",")),
            consumers=options["consumers"],
            managers=options["managers"],
        )
        say(
            f"built a company of {options['lines']:,} lines, {options['consumers']} consumers and"
            f" {options['managers']} managers with their sessions, in {time.perf_counter() - started:.1f} s"
        )
        env = {
            "CHANNELS_PREFIX": prefix,
            "CHARGING_QUOTA_STORE": "0",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_DEBUG": "false",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        processes = options["processes"]
        with servers(processes=processes, port=free_port(), env=env) as url, ConnectionsSampler() as sampler:
            main = self._watched_run(company, url, company.consumers + company.managers, options)
            self._say("everyone", main)
            stressed = company.consumers[0]
            stress_options = {
                **options,
                "rate": options["stress_rate"],
                "seconds": options["stress_seconds"],
                "drivers": 1,
            }
            stress = self._watched_run(
                company, url, [stressed] * options["stress_sockets"], stress_options, lines=[_line(stressed)]
            )
            self._say("one line", stress)
            idle_dropped, page = self._idle_and_page(company, url, options)
            say(f"idle: {options['idle_sockets']} sockets for {options['idle_seconds']:.0f} s, dropped {idle_dropped}")
            say(f"line page with {options['page_records']:,} usage records: p95 {page:.0f} ms")
        say(f"database sessions held by the servers at most: {sampler.most}")
        say(
            f"live-bench sockets={main.sockets} processes={processes} p95_ms={main.p95_ms:.0f}"
            f" lost={main.lost} dropped={main.dropped + stress.dropped + idle_dropped}"
            f" db_connections_max={sampler.most}"
        )

    def _watched_run(self, company: LiveCompany, url: str, watchers, options, lines=None) -> Figures:
        line_ids = lines or company.bench.line_ids
        with Screens(url, watchers) as screens:
            charged = charge_steadily(
                company=company,
                line_ids=line_ids,
                rate=options["rate"],
                seconds=options["seconds"],
                drivers=options["drivers"],
                prefix=f"run-{time.monotonic_ns()}",
                every=options["batch_seconds"],
            )
            time.sleep(SETTLE_SECONDS)
            final = final_values(company, watchers)
        return figures(
            logs=screens.logs, required=charged.required, final=final, charges=charged.count, seconds=charged.seconds
        )

    def _say(self, name: str, run: Figures) -> None:
        self.stdout.write(
            f"{name}: {run.sockets} sockets, {run.charges:,} charges at {run.rate:,.0f}/s;"
            f" commit to screen p50 {run.p50_ms:.0f} ms, p95 {run.p95_ms:.0f} ms;"
            f" never shown {run.never}, lost {run.lost}, dropped {run.dropped}"
            + (f" ({'; '.join(run.drop_reasons)})" if run.drop_reasons else "")
        )

    def _idle_and_page(self, company: LiveCompany, url: str, options) -> tuple[int, float]:
        """Sockets that hear nothing but heartbeats for a while, as the line page is timed, then
        loaded by many clients at once."""
        timed = company.consumers[1]
        year_of_usage(line_id=_line(timed), msisdn=company.msisdn_of[_line(timed)], records=options["page_records"])
        idle = company.consumers[2 : 2 + options["idle_sockets"]]
        with Screens(url, idle) as screens:
            began = time.monotonic()
            path = f"/selfcare/lines/{_line(timed)}/"
            page = page_p95(url=url, cookie=timed.cookie, path=path)
            answered = pages_at_once(url=url, cookie=timed.cookie, path=path)
            self.stdout.write(f"pages under load: 40 clients loading the line page 5 times each, {answered} answered")
            time.sleep(max(0.0, options["idle_seconds"] - (time.monotonic() - began)))
        return sum(1 for log in screens.logs if log.dropped), page


def _line(watcher) -> int:
    return int(watcher.group.split(".")[1])
