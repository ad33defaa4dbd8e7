"""schemathesis against the running API, once per role: the network (a network key), a
consumer, an enterprise manager and an agent (the demo's logins, each with an API token).

    python -m tests.fuzz.api [--examples N] [--seed S] [--role ROLE ...]

It works in a database of its own: with DATABASE_URL on PostgreSQL, a database named after
it with ``_fuzz`` appended (made afresh, dropped at the end); otherwise a SQLite file in a
temporary folder. Tasks run in the server's process (no Redis), so nothing else is touched.
It loads the demo data, serves the portal with uvicorn on a free port and runs schemathesis
with every check (tests/fuzz/schemathesis.toml says which statuses the domain may answer to
well-formed input). Its last two lines say how each role did and how many passed; the exit
status is non-zero if any role failed.
"""

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
NETWORK_PATHS = r"^/api/(usage|charging)"
ROLES = {
    # role: (demo login or None for the network key, operations it is fuzzed on)
    "network": (None, NETWORK_PATHS),
    "consumer": ("alice", None),
    "manager": ("acme-manager", None),
    "agent": ("agent", None),
}
DEFAULT_EXAMPLES = 25
DEFAULT_SEED = 15


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="test cases per operation and role")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="schemathesis's seed (a run is repeatable)")
    parser.add_argument("--role", action="append", choices=sorted(ROLES), help="only these roles (default: all)")
    parser.add_argument("--report-dir", type=Path, help="keep schemathesis's JUnit reports here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="api-fuzz-") as scratch:
        env, drop_database = _environment(Path(scratch))
        try:
            headers = _prepare(env)
            schema = Path(scratch) / "schema.yaml"
            _manage(env, "spectacular", "--file", str(schema))
            results = {}
            with _server(env) as url:
                for role in args.role or list(ROLES):
                    results[role] = _fuzz(role, url, schema, headers[role], args)
        finally:
            drop_database()
    summary = " ".join(f"{role}={'ok' if ok else 'failed'}" for role, ok in results.items())
    print(f"api-fuzz examples={args.examples} seed={args.seed} {summary}")
    passed = sum(results.values())
    print(f"fuzz: {passed} passed, {len(results) - passed} failed")  # roles, in the plain closing form
    return 0 if all(results.values()) else 1


def _environment(scratch: Path):
    """The server's environment: a database of its own, no Redis; and how to drop the database."""
    env = {
        # As production runs (DEBUG off unless asked for), with a key of the run's own; served
        # over plain HTTP on this machine, so not redirected to HTTPS.
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        **os.environ,
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "REDIS_URL": "",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "PYTHONPATH": str(ROOT),
    }
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        env.update(DATABASE_URL="", SQLITE_PATH=str(scratch / "fuzz.sqlite3"))
        return env, lambda: None
    import psycopg2  # the runtime's driver; only needed on PostgreSQL

    parsed = urlparse(url)
    name = f"{parsed.path.lstrip('/') or 'portal'}_fuzz"
    admin = urlunparse(parsed._replace(path="/postgres"))

    def run(statement: str) -> None:
        connection = psycopg2.connect(admin)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    quoted = '"' + name.replace('"', '""') + '"'
    run(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    run(f"CREATE DATABASE {quoted}")
    env["DATABASE_URL"] = urlunparse(parsed._replace(path=f"/{name}"))
    return env, lambda: run(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")


def _manage(env: dict, *argv: str) -> str:
    done = subprocess.run(  # noqa: S603 (this interpreter, the project's manage.py)
        [sys.executable, str(ROOT / "manage.py"), *argv], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# Run in the server's database: the demo data, an API token per login and a network key
# with every scope; prints one "role header" line each.
_CREDENTIALS = """
from rest_framework.authtoken.models import Token
from charging.credentials import network_credential_issue
from charging.models import NetworkCredential
from django.contrib.auth.models import User
for role, username in {logins!r}.items():
    token, _ = Token.objects.get_or_create(user=User.objects.get(username=username))
    print(role, "Token", token.key)
issued = network_credential_issue(source="fuzz", scopes=NetworkCredential.Scope.values)
print("network", "Bearer", issued.key)
"""


def _prepare(env: dict) -> dict[str, str]:
    _manage(env, "migrate", "--noinput")
    _manage(env, "demo_load")
    logins = {role: login for role, (login, _) in ROLES.items() if login}
    out = _manage(env, "shell", "-c", _CREDENTIALS.format(logins=logins))
    headers = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] in ROLES:  # past whatever else the shell printed
            role, scheme, key = words
            headers[role] = f"Authorization: {scheme} {key}"
    return headers


class _server:
    """uvicorn serving the portal on a free port, for the length of the ``with``."""

    def __init__(self, env: dict):
        self.env = env

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen(  # noqa: S603 (fixed argv)
            [sys.executable, "-m", "uvicorn", "portal.asgi:application", "--port", str(port), "--log-level", "error"],
            env=self.env,
            cwd=ROOT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/schema/", timeout=2)  # noqa: S310 (this machine's server)
                return url
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise SystemExit("the server did not come up") from None
                time.sleep(0.3)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _fuzz(role: str, url: str, schema: Path, header: str, args) -> bool:
    _, paths = ROLES[role]
    argv = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        str(schema),
        "--url",
        url,
        "--header",
        header,
        "--checks",
        "all",
        "--max-examples",
        str(args.examples),
        "--seed",
        str(args.seed),
        "--workers",
        "1",
    ]
    if paths:
        argv += ["--include-path-regex", paths]
    if args.report_dir:
        argv += ["--report", "junit", "--report-junit-path", str(args.report_dir.resolve() / f"fuzz-{role}.xml")]
    print(f"--- schemathesis as {role} ---", flush=True)
    # In the scratch folder: schemathesis keeps what it found for replays where it runs.
    return subprocess.run(argv, cwd=schema.parent, check=False).returncode == 0  # noqa: S603 (fixed argv)


if __name__ == "__main__":
    sys.exit(main())
