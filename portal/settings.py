"""Settings for the portal, driven by environment variables.

With no variables set the project runs embedded: SQLite, an in-memory channel layer, Celery
tasks executed in-process and a local-memory cache. ``DATABASE_URL`` switches the database to
PostgreSQL; ``REDIS_URL`` switches the Celery broker, the channel layer and the cache to Redis.
"""

import os
import secrets
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
    """A yes/no variable; unset or empty, the default."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Off unless asked for: a 500 must never show the debug page to a stranger. ``make run`` asks
# for it (the local demo); everything else runs as production would.
DEBUG = env_bool("DJANGO_DEBUG", False)
# The placeholder an earlier .env.example shipped: a key anyone can read is no key.
PUBLISHED_SECRET_KEYS = {"change-me-to-a-long-random-string"}
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "").strip()
if not SECRET_KEY or SECRET_KEY in PUBLISHED_SECRET_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a long random value when DJANGO_DEBUG is off, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    # A fresh random key per process: sessions do not survive a restart, which is fine locally.
    SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# --- HTTPS: on unless DEBUG, each overridable where a deployment needs it ----------------------
# Cookies go over HTTPS only, and browsers are told to use nothing else for a year (HSTS),
# subdomains included and fit for the preload list; try a first deployment with a small
# DJANGO_SECURE_HSTS_SECONDS, since a browser remembers the header that long.
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS") or (0 if DEBUG else 31536000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", not DEBUG)
# Plain HTTP is redirected to HTTPS. The server speaks plain HTTP behind a proxy that ends TLS
# and says which scheme the client used in X-Forwarded-Proto (the proxy must set that header,
# never pass a client's on); turn it off where nothing stands in front of the server.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
BEHIND_PROXY = env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# Probes and scrapers ask the process itself, over plain HTTP (see the README, "Operating it").
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^ready/$", r"^metrics$"]

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
    "axes",
]

MIDDLEWARE = [
    "portal.operations.metrics.requests_counted",  # first: it counts every answer, redirects too
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "portal.api.middleware.ApiErrorsMiddleware",  # before CommonMiddleware's slash redirects
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for too many failures into the lockout page (429).
    "axes.middleware.AxesMiddleware",
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
    # Workers and commands keep a connection for a minute; the ASGI server closes its own at
    # the end of each request (portal/asgi.py), as Django advises under ASGI.
    CONN_MAX_AGE = int(os.environ.get("DJANGO_CONN_MAX_AGE", "60"))
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=True)}
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
# HTTP requests a server process runs at once (each holds a database connection while it
# runs): a server process holds at most this many connections, and one for its websockets.
HTTP_REQUESTS_AT_ONCE = int(os.environ.get("DJANGO_HTTP_REQUESTS_AT_ONCE", "6"))

# --- Redis: Celery broker, channel layer, cache ----------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Keys of the channel layer and of who watches what (charging.live) start with this.
CHANNELS_PREFIX = os.environ.get("CHANNELS_PREFIX", "portal")
# How often a live socket hears from the server when nothing moves: the page counts a socket
# silent for longer than twice this as dead, and the server re-sends whatever it missed.
LIVE_HEARTBEAT_SECONDS = float(os.environ.get("LIVE_HEARTBEAT_SECONDS", "15"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "portal.channel_layer.WaitingRedisChannelLayer",
            "CONFIG": {
                # The layer waits for messages in blocking pops of 5 s; redis-py's own read
                # timeout is also 5 s by default, so a quiet socket's pop timed out and closed it.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5}],
                "prefix": CHANNELS_PREFIX,
                # A server process's sockets share one queue: each group push is one entry in it
                # whatever the number of sockets, so this is how far a process may fall behind.
                "capacity": int(os.environ.get("CHANNELS_CAPACITY", "5000")),
            },
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
# A task whose worker process was killed goes back on the queue at once (it is acknowledged
# only when done); one whose whole worker vanished is delivered again after the visibility
# timeout, which must be longer than any task runs (CELERY_TASK_TIME_LIMIT).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "300"))}
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
    # Charging tasks the broker could not take (it was away) are queued once it answers again.
    "charging-queue-usage-backlog": {
        "task": "charging.tasks.queue_usage_backlog",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    # The quota store's log reaches the ledger within about a second (when the store is on).
    "charging-apply-quota-log": {
        "task": "charging.tasks.apply_quota_log",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
}

# --- Accounts ----------------------------------------------------------------------------------
# Services a line held for non-payment alone may still use (comma-separated, e.g. "voice"):
# the engine knows services, not called numbers, so this is how customer care stays reachable.
ACCOUNTS_NON_PAYMENT_ALLOWED_SERVICES = frozenset(
    name.strip() for name in os.environ.get("ACCOUNTS_NON_PAYMENT_ALLOWED_SERVICES", "").split(",") if name.strip()
)

# --- Charging ----------------------------------------------------------------------------------
# Offline usage records charged per transaction: larger batches lock and write each shared
# counter once for more records, at the price of longer transactions (a batch holds its lines'
# own limits until it commits; the shared rows only for its last statements). On the charging
# bench, where a batch of 2,000 lines touches nearly every cost centre, 4,000 sustained about
# 14% more records per second than 2,000, and 6,000 or 8,000 no more than 4,000.
CHARGING_BATCH_SIZE = int(os.environ.get("CHARGING_BATCH_SIZE", "4000"))
# A charging task that meets a database outage tries again with a backoff doubling up to
# CHARGING_TASK_RETRY_MAX_SECONDS, this many times: the default rides out about ten minutes.
CHARGING_TASK_RETRIES = int(os.environ.get("CHARGING_TASK_RETRIES", "12"))
CHARGING_TASK_RETRY_MAX_SECONDS = int(os.environ.get("CHARGING_TASK_RETRY_MAX_SECONDS", "60"))
# Records stored this long ago and still uncharged (their task was lost) are queued again by
# the sweep (beat's requeue_uncharged_usage, or manage.py usage_requeue).
CHARGING_REQUEUE_AFTER_SECONDS = int(os.environ.get("CHARGING_REQUEUE_AFTER_SECONDS", "600"))
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
# The store's log is applied once Redis has it on disk (its append-only file); a Redis that
# keeps none is refused, unless it is a throw-away one (tests, benchmarks) said so here.
CHARGING_QUOTA_VOLATILE_REDIS = env_bool("CHARGING_QUOTA_VOLATILE_REDIS", False)
# The most one agent adjustment may credit or debit, in the account's currency (a decimal);
# larger corrections need several reasoned adjustments, or the approval of a later workflow.
CHARGING_MAX_ADJUSTMENT = os.environ.get("CHARGING_MAX_ADJUSTMENT", "500")

# --- Operations: /health/, /ready/, /metrics (README, "Operating it") ---------------------------
# Set, /ready/ and /metrics answer only requests that carry it (Authorization: Bearer <token>);
# unset, only the loopback address asking directly.
OPERATIONS_TOKEN = os.environ.get("OPERATIONS_TOKEN", "")
# How long readiness waits for a Celery worker's answer (the first answer ends the wait).
READY_WORKER_PING_SECONDS = float(os.environ.get("READY_WORKER_PING_SECONDS") or 1.0)
# Past this many quota store log entries not yet applied, the process is not ready: the
# follower or beat that applies them has stopped or fallen far behind (an applier does about
# ten thousand a second).
READY_QUOTA_LOG_LAG_MAX = int(os.environ.get("READY_QUOTA_LOG_LAG_MAX") or 100_000)

# The most one usage record, or one online request (units asked for, used, or charged as an
# event), may carry, per service in its unit: past it a record is kept as rejected and a
# request refused, naming the field. A day of a call or a video conference, 100 GiB of data
# (far past a day of a phone's use), 1,000 texts, 100 content items. Override any of them with
# CHARGING_MAX_UNITS="data=53687091200,sms=500".
CHARGING_MAX_UNITS = {
    "data": 100 * 1024**3,
    "voice": 24 * 3600,
    "sms": 1_000,
    "video": 24 * 3600,
    "content": 100,
} | {
    service.strip(): int(limit)
    for service, _, limit in (item.partition("=") for item in os.environ.get("CHARGING_MAX_UNITS", "").split(","))
    if service.strip()
}

# A usage record older than this many days is kept as rejected: the period it belongs to was
# billed long ago (and dates near year 1 would overflow the time zone arithmetic).
CHARGING_MAX_RECORD_AGE_DAYS = int(os.environ.get("CHARGING_MAX_RECORD_AGE_DAYS", "366"))

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins are throttled (django-axes) on every login form, the portal's and the admin's:
# after LOGIN_FAILURE_LIMIT failures for one username, or from one address, that username or
# address is refused, right password or not, for LOGIN_LOCKOUT_MINUTES (each further try
# starts the wait again) or until an agent unlocks it (README, "Operating it").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT") or 5)
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES") or 30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
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
    # The token first: its challenge (WWW-Authenticate) turns a missing credential into 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "portal.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "portal.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.Pages",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Telecom self-care and enterprise portal API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get schemas of their own (required, non-blank strings, no read-only
    # fields): what a client may send, precisely, for clients and for schemathesis.
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": os.environ.get("CELERY_LOG_LEVEL", "WARNING")},
        # Failed logins and lockouts are warnings; its banner and each good login are not news.
        "axes": {"level": os.environ.get("AXES_LOG_LEVEL", "WARNING")},
    },
}

# WhiteNoise answers static files with a synchronous iterator, which Django's ASGI handler
# consumes in a thread and warns about on every request; the warning tells us nothing new.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
