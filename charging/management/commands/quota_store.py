"""Operating the online quota store: load a company into it, apply its log now (or follow it
as it grows), hand every free slice back to the database (before switching the store off,
say), check that every slice is accounted for, and free what a crash left reserved for nobody."""

from threading import Event

from django.core.management.base import BaseCommand, CommandError

from charging.models import QuotaLogSetAside
from charging.quota import quota_store_enabled
from charging.quota.log import log_apply, log_follow
from charging.quota.slices import slices_mismatches, slices_repair, slices_return
from charging.quota.warm import company_warm
from enterprise.models import Company


class Command(BaseCommand):
    help = (
        "Loads a company into the quota store (warm), applies its log (apply) or follows it at a"
        " lower CPU priority than the sessions' requests until stopped (follow), hands slices back"
        " (return), checks every slice is accounted for (check) or frees what slices hold for"
        " nobody (repair); recover does apply, return and repair after Redis lost writes. Run check,"
        " repair and recover while the store is quiet."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["warm", "apply", "follow", "return", "check", "repair", "recover"])
        parser.add_argument("--company", type=int, help="The company to load (warm).")
        parser.add_argument("--service", default="data", help="The service whose line profiles to load (warm).")

    def handle(self, *args, action, company=None, service="data", **options):
        if not quota_store_enabled():
            raise CommandError("the quota store is off: set REDIS_URL and CHARGING_QUOTA_STORE=1")
        if action == "apply":
            self.stdout.write(f"applied {log_apply():,} log entries")
        elif action == "follow":
            self._follow()
        elif action == "return":
            self.stdout.write(f"handed back the free part of {len(slices_return()):,} slices")
        elif action == "repair":
            freed = slices_repair()
            self.stdout.write(f"freed {sum(freed.values()):,} units that {len(freed):,} slices held for nobody")
        elif action == "recover":
            self._recover()
        elif action == "check":
            problems = slices_mismatches()
            for problem in problems:
                self.stderr.write(problem)
            if problems:
                raise CommandError(f"{len(problems)} slices are not what the store accounts for")
            self.stdout.write(self.style.SUCCESS("every slice is accounted for"))
        else:
            self._warm(company_id=company, service=service)

    def _recover(self) -> None:
        """After Redis lost writes (a crash, an older append-only file): with the store quiet
        (sessions stopped), apply what the log still holds, setting aside what the database
        cannot apply, take every free slice back and free what slices hold for nobody."""
        applied = log_apply()
        returned = slices_return()
        freed = slices_repair()
        problems = slices_mismatches()
        set_aside = QuotaLogSetAside.objects.count()
        self.stdout.write(
            f"quota-store recover applied={applied} slices_returned={len(returned)} "
            f"units_freed={sum(freed.values())} set_aside={set_aside} mismatches={len(problems)}"
        )
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} slices are still not what the store accounts for")

    def _follow(self) -> None:
        self.stdout.write("applying the log as it grows; stop with Ctrl-C")
        try:
            log_follow(stop=Event())
        except KeyboardInterrupt:  # the batch being applied rolls back whole: the next run repeats it
            self.stdout.write("stopped")

    def _warm(self, *, company_id: int | None, service: str) -> None:
        company = Company.objects.filter(pk=company_id).first() if company_id else None
        if company is None:
            raise CommandError("warm needs --company with the id of a company")
        profiles, slices = company_warm(company=company, service=service)
        self.stdout.write(f"loaded {profiles:,} line profiles and {slices:,} slices of {company}")
