from django.core.management.base import BaseCommand

from portal.demo.data import DEMO_LOGINS, demo_is_loaded, demo_load


class Command(BaseCommand):
    help = "Loads the demo data (consumers, an enterprise with a few hundred lines, an agent) once."

    def handle(self, *args, **options):
        if demo_is_loaded():
            self.stdout.write("Demo data already loaded.")
        else:
            demo_load()
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write("Logins (user / password):")
        for login in DEMO_LOGINS:
            self.stdout.write(f"  {login.role:<31} {login.username} / {login.password}")
