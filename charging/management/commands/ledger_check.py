from django.core.management.base import BaseCommand, CommandError

from charging.ledger import ledger_mismatches


class Command(BaseCommand):
    help = (
        "Checks that every balance equals the sum of its ledger and every allowance is what its ledger says;"
        " exits non-zero if one does not."
    )

    def handle(self, *args, **options):
        problems = ledger_mismatches()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} balances differ from their ledger")
        self.stdout.write(self.style.SUCCESS("ledger ok: every balance equals the sum of its ledger"))
