"""Production settings unless DEBUG is asked for: a key of one's own, HTTPS only, and Django's
deployment checklist passes with no warning."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOWN = [
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
]
VARIABLES = [
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_SESSION_COOKIE_SECURE",
    "DJANGO_CSRF_COOKIE_SECURE",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_SECURE_HSTS_PRELOAD",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SECURE_PROXY_SSL_HEADER",
]
PRODUCTION = {
    "DEBUG": False,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
}


def _environment(**variables: str) -> dict[str, str]:
    """This process's environment with the settings' variables empty (as if unset, and so a
    developer's ``.env`` cannot fill them in) but ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(dict.fromkeys(VARIABLES, ""), **variables)
    return env


def _load_settings(**variables: str) -> subprocess.CompletedProcess:
    show = f"import json, portal.settings as s; print(json.dumps({{n: getattr(s, n) for n in {SHOWN!r}}}))"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", show], cwd=ROOT, env=_environment(**variables), capture_output=True, text=True
    )


def _a_key() -> str:
    return secrets.token_urlsafe(64)


def test_settings_refuse_to_start_with_nothing_set():
    if (ROOT / ".env").exists():
        pytest.skip("a .env here sets variables")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    show = "import portal.settings"
    loaded = subprocess.run([sys.executable, "-c", show], cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S603

    assert loaded.returncode == 1
    assert "DJANGO_SECRET_KEY must be set" in loaded.stderr


def test_settings_refuse_the_key_an_example_once_shipped():
    loaded = _load_settings(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="change-me-to-a-long-random-string")

    assert loaded.returncode == 1
    assert "DJANGO_SECRET_KEY must be set" in loaded.stderr


def test_env_example_ships_no_key_the_settings_accept():
    lines = (ROOT / ".env.example").read_text().splitlines()
    example = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))

    loaded = _load_settings(DJANGO_DEBUG=example["DJANGO_DEBUG"], DJANGO_SECRET_KEY=example["DJANGO_SECRET_KEY"])

    assert loaded.returncode == 1
    assert "DJANGO_SECRET_KEY must be set" in loaded.stderr


def test_a_key_alone_gives_production_settings():
    loaded = _load_settings(DJANGO_SECRET_KEY=_a_key())

    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == PRODUCTION


def test_each_https_setting_can_be_turned_off_where_a_deployment_needs_it():
    loaded = _load_settings(
        DJANGO_SECRET_KEY=_a_key(),
        DJANGO_SESSION_COOKIE_SECURE="false",
        DJANGO_CSRF_COOKIE_SECURE="false",
        DJANGO_SECURE_HSTS_SECONDS="3600",
        DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        DJANGO_SECURE_HSTS_PRELOAD="false",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_PROXY_SSL_HEADER="false",
    )

    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 3600,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_debug_asked_for_runs_locally_without_a_key():
    loaded = _load_settings(DJANGO_DEBUG="true")

    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout) == {
        "DEBUG": True,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_production_settings_pass_the_deployment_checklist_with_no_warning():
    checked = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_environment(
            DJANGO_SETTINGS_MODULE="portal.settings",
            DJANGO_SECRET_KEY=_a_key(),
            DJANGO_ALLOWED_HOSTS="example.org",
        ),
        capture_output=True,
        text=True,
    )

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "System check identified no issues (0 silenced)."
