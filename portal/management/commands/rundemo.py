import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serves the portal (HTTP and websockets) and feeds it live demo usage until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--rate", type=float, default=3.0, help="usage records per second")

    def handle(self, *args, host, port, rate, **options):
        url = f"http://{host}:{port}"
        # Stopped by a plain ``kill`` (a service manager, a container stopping), it stops its
        # server as Ctrl-C does; by default the signal would end this process alone and leave
        # the server holding the port.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        server = subprocess.Popen(  # noqa: S603 (fixed argv)
            [
                sys.executable,
                "-m",
                "uvicorn",
                "portal.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            # A local demo over plain HTTP: DEBUG on (no HTTPS redirect, no Secure cookies)
            # unless the environment says otherwise.
            env={**os.environ, "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "true")},
        )
        try:
            self._wait_until_up(url, server)
            call_command("demo_load")
            self.stdout.write(self.style.SUCCESS(f"Portal running at {url}  (Ctrl-C stops)"))
            call_command("simulate_usage", url=url, rate=rate)
        finally:
            server.terminate()
            server.wait(timeout=10)

    def _wait_until_up(self, url: str, server: subprocess.Popen) -> None:
        for _ in range(100):
            if server.poll() is not None:
                raise SystemExit(f"The server exited with code {server.returncode}.")
            try:
                urllib.request.urlopen(url + "/accounts/login/", timeout=1)  # noqa: S310
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("The server did not come up within 20 seconds.")


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)
