"""Settings for the portal, driven by environment variables.

With no variables set the project runs embedded: SQLite, an in-memory channel layer, Celery
tasks executed in-process and a local-memory cache. ``DATABASE_URL`` switches the database to
PostgreSQL; ``REDIS_URL`` switches the Celery broker, the channel layer and the cache to Redis.
"""

import os
import secrets
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def load_env_file(path: Path) -> None:
    """Reads ``KEY=VALUE`` lines of a local ``.env`` (see ``.env.example``); variables already
    set in the environment win, so a shell export always overrides the file."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


load_env_file(BASE_DIR / ".env")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    # A fresh random key per process: sessions do not survive a restart, which is fine locally.
    SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "mptt",
    "portal",
    "enterprise",
    "charging",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # IMMEDIATE transactions take SQLite's write lock up front, so two writers queue
            # instead of failing with "database is locked" when one upgrades its lock.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # A file, not memory: the browser tests serve the portal from a thread of their own.
            "TEST": {"NAME": str(BASE_DIR / f".test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, channel layer, cache ----------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNELS_PREFIX", "portal")},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"  # a host named, so kombu does not warn
CELERY_RESULT_BACKEND = None
# Without a broker, tasks run in the caller's process: the embedded mode needs no worker.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "portal")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Celery's Django fixup closes every database connection around each task unless this is set,
# so each charging task would connect anew to a cold backend. Workers keep theirs instead, and
# close one by Django's own rules (broken, or older than CONN_MAX_AGE): see portal.celery.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BEAT_SCHEDULE: dict = {
    # Each product's period is charged once however often this runs; hourly catches a new
    # month within the hour in every customer's time zone.
    "catalog-recurring-charges": {"task": "catalog.tasks.recurring_charges_run", "schedule": 3600.0},
    # Grants of sessions that stopped reporting go back to their balances; a run not started
    # within the minute is dropped, the next one does its work.
    "charging-expire-reservations": {
        "task": "charging.tasks.expire_reservations",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Usage records whose charging task was lost are queued again (``usage_events_requeue``).
    "charging-requeue-uncharged-usage": {
        "task": "charging.tasks.requeue_uncharged_usage",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    # The quota store's log reaches the ledger within about a second (when the store is on).
    "charging-apply-quota-log": {
        "task": "charging.tasks.apply_quota_log",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
}

# --- Charging ----------------------------------------------------------------------------------
# Offline usage records charged per transaction: larger batches lock and write each shared
# counter once for more records, at the price of longer transactions (a batch holds its lines'
# own limits until it commits; the shared rows only for its last statements). On the charging
# bench, where a batch of 2,000 lines touches nearly every cost centre, 4,000 sustained about
# 14% more records per second than 2,000, and 6,000 or 8,000 no more than 4,000.
CHARGING_BATCH_SIZE = int(os.environ.get("CHARGING_BATCH_SIZE", "4000"))
# How long an online grant is held before a silent session's units are released.
CHARGING_GRANT_VALIDITY_SECONDS = int(os.environ.get("CHARGING_GRANT_VALIDITY_SECONDS", "300"))
# Online sessions granted out of slices held in Redis, with a log applied to the database
# (``charging.quota``): for operators whose shared pools take more grants than one database
# row can. Needs REDIS_URL, a worker and beat (they apply the log every second).
CHARGING_QUOTA_STORE = env_bool("CHARGING_QUOTA_STORE", False) and bool(REDIS_URL)
# What part of a counter's headroom one slice hands to the store.
CHARGING_QUOTA_SHARE = float(os.environ.get("CHARGING_QUOTA_SHARE", "0.25"))
# The store's keys in Redis start with this (one store per deployment).
CHARGING_QUOTA_PREFIX = os.environ.get("CHARGING_QUOTA_PREFIX", "quota")
# How long the store keeps answers (for repeats) and ended sessions (for late reports).
CHARGING_QUOTA_KEEP_SECONDS = int(os.environ.get("CHARGING_QUOTA_KEEP_SECONDS", "900"))
# The most one agent adjustment may credit or debit, in the account's currency (a decimal);
# larger corrections need several reasoned adjustments, or the approval of a later workflow.
CHARGING_MAX_ADJUSTMENT = os.environ.get("CHARGING_MAX_ADJUSTMENT", "500")

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "selfcare:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production collects static files here (manage.py collectstatic) and WhiteNoise serves them;
# without it WhiteNoise serves straight from the apps' and project's static folders.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = STATIC_ROOT is None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Telecom self-care and enterprise portal API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": os.environ.get("CELERY_LOG_LEVEL", "WARNING")},
    },
}

# WhiteNoise answers static files with a synchronous iterator, which Django's ASGI handler
# consumes in a thread and warns about on every request; the warning tells us nothing new.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
