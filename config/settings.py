"""One settings module, driven by the environment (see the table in README.md).

Tests override a handful of lines in ``config/settings_test.py``.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import warnings
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError

from config.env import env_bool, env_database, env_int, env_list, env_str, env_targets

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("HUB_DATA_DIR", str(BASE_DIR / "data")))  # type: ignore[arg-type]

# Authlib >= 1.8 prefers httpx2; the design card fixes plain httpx, so this one notice is silenced.
warnings.filterwarnings("ignore", message=r".*httpx2.*")

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The hub's address as browsers reach it (scheme and host, no path). The OAuth2 redirect URI is built
# from it, never from a request's Host header; unset (outside DEBUG), the authorization flow refuses to start.
HUB_PUBLIC_URL = env_str("HUB_PUBLIC_URL", f"http://127.0.0.1:{env_int('PORT', 8000)}" if DEBUG else "").rstrip("/")
if HUB_PUBLIC_URL and not re.fullmatch(r"https?://[^/?#@\s]+", HUB_PUBLIC_URL):
    raise ImproperlyConfigured(
        f"HUB_PUBLIC_URL must be scheme and host only, e.g. https://hub.example.com: {HUB_PUBLIC_URL!r}"
    )


def _check_credentials_key(key: str, source: str) -> str:
    key = key.strip()
    if len(key) < 32:
        raise ImproperlyConfigured(f"{source} must be at least 32 characters long")
    if key == SECRET_KEY:
        raise ImproperlyConfigured(f"{source} must differ from SECRET_KEY")
    return key


def _credentials_key() -> str:
    """CREDENTIALS_KEY encrypts stored credentials; it is never SECRET_KEY.

    In development a key file (mode 0600) is created in DATA_DIR when the variable is unset. With
    DEBUG off the file is ignored: a production server names its key explicitly.
    """
    key = env_str("CREDENTIALS_KEY")
    if key is not None:
        return _check_credentials_key(key, "CREDENTIALS_KEY")
    key_file = DATA_DIR / "credentials.key"
    if not DEBUG:
        raise ImproperlyConfigured(
            "CREDENTIALS_KEY must be set when DEBUG is off (it encrypts stored credentials; "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if not key_file.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        print(f"Created a development credentials key in {key_file} (mode 0600).", file=sys.stderr)
    return _check_credentials_key(key_file.read_text(), f"the development key in {key_file}")


CREDENTIALS_KEY = _credentials_key()
# Older keys still accepted for reading (comma-separated) while `manage.py rotate_credentials_key` runs.
CREDENTIALS_KEY_FALLBACKS = [
    _check_credentials_key(k, "each CREDENTIALS_KEY_FALLBACKS entry") for k in env_list("CREDENTIALS_KEY_FALLBACKS", [])
]
# django-cryptography reads these.
CRYPTOGRAPHY_KEY = CREDENTIALS_KEY
CRYPTOGRAPHY_SALT = "integration-hub.credentials"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens: django-rest-knox keeps only a SHA-512 of each token, with an expiry. DRF's authtoken app
    # (raw keys) is gone: accounts' migration 0001 hashed its rows into knox tokens and emptied its table.
    "knox",
    "axes",  # login throttling (AXES_* below)
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: /api/docs/ works offline
    "channels",
    "django_celery_beat",
    "accounts",
    "integrations",
    "integrations.tools",  # the agent tools (label "tools"): tokens, the audit trail of calls, write intents
    "integrations.agents",  # agent profiles (label "agents"): tools, grants, data rules, quotas per token
    "integrations.sync",  # the HR data mirror (label "sync"): verified webhooks, reconciliation, full sync
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files (admin CSS) straight from Daphne
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out login into the lockout page (last, as axes asks)
    # The hub's own database or Redis down: 503 with Retry-After and a category, never a 500 page.
    "integrations.hub_outage.HubOutageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{DATA_DIR / 'hub.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # WAL lets readers work while one process writes; synchronous=NORMAL is the setting SQLite documents
    # for WAL (no fsync per commit, still never corrupt): without it every health check pays an fsync.
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
elif DATABASES["default"]["ENGINE"].endswith("mysql"):
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
# WhiteNoise serves from here with DEBUG off (filled by `collectstatic` in scripts/run), from the app
# folders with DEBUG on; it warns at every start when the folder is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/integrations"

# Login throttling (django-axes): the dashboard, admin and browsable-API logins lock a user name at one
# address after LOGIN_FAILURE_LIMIT failures, for LOGIN_LOCKOUT_MINUTES (README, section Security).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out user name before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # another user, or the same user elsewhere, is not locked
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"  # answered with 429
# The client address is REMOTE_ADDR unless the operator says how many reverse proxies (each appending to
# X-Forwarded-For) stand in front of the hub; a client-sent X-Forwarded-For is never trusted beyond them.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
AXES_IPWARE_META_PRECEDENCE_ORDER: tuple[str, ...]
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1  # ipware counts the hops after the client's own entry
    IPWARE_STRICT = False  # a longer, client-padded header still yields the entry our first proxy wrote
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)

# API tokens (django-rest-knox): `manage.py create_api_token USER`; `Authorization: Token <token>`.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("API_TOKEN_TTL_DAYS", 90, minimum=1)),
    "TOKEN_PREFIX": "hubut_",  # recognisable in a leak scan, like agent tokens' hubat_
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# Failed token authentication (API tokens, agent tokens, the MCP endpoint): after this many failures from
# one address within the window, that address gets 429 with Retry-After until the window ends.
TOKEN_FAILURE_LIMIT = env_int("TOKEN_FAILURE_LIMIT", 10, minimum=1)
TOKEN_FAILURE_WINDOW_SECONDS = env_int("TOKEN_FAILURE_WINDOW_MINUTES", 15, minimum=1) * 60

# REST API (integrations/api/). Token first so that an anonymous request gets 401 + WWW-Authenticate.
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "integrations.hub_outage.exception_handler",  # database or Redis down: 503 envelope
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.APITokenAuthentication",  # knox, hashed; repeated failures get a 429
        "rest_framework.authentication.SessionAuthentication",  # enforces CSRF on writes
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # DRF's parsers, with JSON nested too deep for Python refused as a 400 instead of a 500.
    "DEFAULT_PARSER_CLASSES": [
        "integrations.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "integrations.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "integrations.api.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Integration Hub API",
    "DESCRIPTION": "Integrations with outside systems: configure, connect, test, watch. See README.md, section API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,  # write-only credentials appear only in request bodies
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Three choice sets are called "state" (an operation's, an uptime state, a webhook delivery's): named apart.
    "ENUM_NAME_OVERRIDES": {
        "OperationStateEnum": ["pending", "running", "succeeded", "failed"],
        "UptimeStateEnum": ["up", "down", "unmonitored"],
        "DeliveryStateEnum": "integrations.sync.models.OutboundDelivery.State",
    },
}

# Hub behaviour.
HEALTH_EVENT_RETENTION_DAYS = env_int("HEALTH_EVENT_RETENTION_DAYS", 14, minimum=1)
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)
METRICS_TOKEN = env_str("METRICS_TOKEN")  # `Authorization: Bearer <token>` may read /metrics
# Health-check hysteresis: one failure degrades, this many in a row is an error; this many successes recover.
HEALTH_FAILURES_TO_ERROR = env_int("HEALTH_FAILURES_TO_ERROR", 3, minimum=1)
HEALTH_SUCCESSES_TO_RECOVER = env_int("HEALTH_SUCCESSES_TO_RECOVER", 2, minimum=1)
HEALTH_DISPATCH_SECONDS = env_int("HEALTH_DISPATCH_SECONDS", 5, minimum=1)
# Due checks go out in tasks of this many (probes in parallel threads, one transaction, one push message).
HEALTH_CHECK_BATCH_SIZE = env_int("HEALTH_CHECK_BATCH_SIZE", 20, minimum=1)
# A connect still "connecting" after this long lost its task (e.g. the whole worker died): marked error.
CONNECT_STUCK_SECONDS = env_int("CONNECT_STUCK_SECONDS", 300, minimum=30)
HUB_LIVE_CONNECTORS_MAX = env_int("HUB_LIVE_CONNECTORS_MAX", 256, minimum=1)
# Agent tools (integrations/tools/): caps, the time limit of a call in a worker, idempotency.
TOOLS_MAX_ROWS = env_int("TOOLS_MAX_ROWS", 1000, minimum=1)
TOOLS_MAX_ITEMS = env_int("TOOLS_MAX_ITEMS", 1000, minimum=1)
TOOLS_MAX_RESULT_BYTES = env_int("TOOLS_MAX_RESULT_BYTES", 2_000_000, minimum=10_000)
TOOLS_TIMEOUT_SECONDS = env_int("TOOLS_TIMEOUT_SECONDS", 30, minimum=1)
# Interrupted HRIS writes (README, Idempotency): the lease when nothing is known of the attempt, and
# the grace a retry waits for a request a timed-out or killed attempt may have left in flight.
TOOLS_WRITE_LEASE_SECONDS = env_int("TOOLS_WRITE_LEASE_SECONDS", TOOLS_TIMEOUT_SECONDS + 20, minimum=2)
TOOLS_IDEMPOTENCY_TTL_HOURS = env_int("TOOLS_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
TOOLS_INFLIGHT_GRACE_SECONDS = env_int("TOOLS_INFLIGHT_GRACE_SECONDS", 15, minimum=0)
TOOLS_AUDIT_RETENTION_DAYS = env_int("TOOLS_AUDIT_RETENTION_DAYS", 90, minimum=1)
# Where a process journals the audit rows of calls made while the database is down (replayed when it is back).
TOOLS_OUTBOX_DIR = env_str("TOOLS_OUTBOX_DIR", str(DATA_DIR / "outbox"))
# A record scope's employee ids are kept this long for time-off listings (writes always check live).
AGENT_SCOPE_CACHE_SECONDS = env_int("AGENT_SCOPE_CACHE_SECONDS", 60, minimum=0)
# Circuit breaker per integration (shared by every worker through Redis).
CIRCUIT_FAILURE_THRESHOLD = env_int("CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1)
CIRCUIT_COOLDOWN_SECONDS = env_int("CIRCUIT_COOLDOWN_SECONDS", 30, minimum=1)
# Retries of a transient failure inside one call (exponential backoff from this many seconds, with jitter).
CONNECTOR_MAX_RETRIES = env_int("CONNECTOR_MAX_RETRIES", 3, minimum=0)
CONNECTOR_RETRY_BACKOFF_MS = env_int("CONNECTOR_RETRY_BACKOFF_MS", 1000, minimum=0)
# Where a connector may point (README, "Security"). Link-local and cloud metadata addresses are always
# refused; loopback only when allowed (by default with DEBUG); the lists take CIDR networks or host:port.
HUB_ALLOW_LOOPBACK_TARGETS = env_bool("HUB_ALLOW_LOOPBACK_TARGETS", DEBUG)
HUB_ALLOWED_TARGETS = env_targets("HUB_ALLOWED_TARGETS")
HUB_BLOCKED_TARGETS = env_targets("HUB_BLOCKED_TARGETS")
# SQLite files only inside these folders: none in production until an operator names one.
SQLITE_ALLOWED_DIRS = env_list("SQLITE_ALLOWED_DIRS", [str(DATA_DIR / "sqlite")] if DEBUG else [])
# The hub's own files, never opened by a connector (its SQLite database is added where the policy is built).
HUB_PROTECTED_PATHS = [str(DATA_DIR / name) for name in ("credentials.key", "dev-admin-password", "sandbox-api-key")]

# Celery (config/celery.py): Redis is broker and result backend; operation ids are task ids.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Task modules besides the autodiscovered integrations/tasks.py and integrations/tools/tasks.py.
CELERY_IMPORTS = ["integrations.tools.invocation"]  # run_tool, next to the code it runs
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again ...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ... including when its pool process is killed
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An unacknowledged message of a worker that died outright comes back after this many seconds (it must
# exceed the longest countdown a task is rescheduled with: tasks cap theirs at 300 s). Every worker looks
# for such messages every 10 s (kombu's default would look only every 100 s).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=5),
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"timeout": 5.0}}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_STORE_EAGER_RESULT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# How often beat refreshes OAuth2 tokens that would enter their refresh margin before its next run.
OAUTH2_REFRESH_BEAT_SECONDS = env_int("OAUTH2_REFRESH_BEAT_SECONDS", 60, minimum=5)
# How often beat reconciles each HR mirror with the provider's change list.
SYNC_RECONCILE_SECONDS = env_int("SYNC_RECONCILE_SECONDS", 300, minimum=30)
# DatabaseScheduler copies these into PeriodicTask rows at start-up (visible in the admin).
CELERY_BEAT_SCHEDULE = {
    "hub: dispatch health checks": {
        "task": "integrations.dispatch_health_checks",
        "schedule": float(HEALTH_DISPATCH_SECONDS),
    },
    "hub: prune old events": {"task": "integrations.prune_events", "schedule": 3600.0},
    "hub: release stuck connects": {"task": "integrations.release_stuck_connects", "schedule": 60.0},
    "hub: refresh OAuth2 tokens ahead of expiry": {
        "task": "integrations.refresh_oauth_tokens",
        "schedule": float(OAUTH2_REFRESH_BEAT_SECONDS),
    },
    "hub: prune agent tool records": {"task": "integrations.tools.prune", "schedule": 3600.0},
    # HR mirrors: what webhooks missed, from /employees/changed (integrations with a mirror only).
    "hub: reconcile HR mirrors": {"task": "sync.reconcile_all", "schedule": float(SYNC_RECONCILE_SECONDS)},
    "hub: send due change webhooks": {"task": "sync.deliver_pending", "schedule": 10.0},
    # Tool calls whose process died closed, and calls journaled while the database was down written.
    "hub: release lost tool calls": {"task": "integrations.tools.release_lost_calls", "schedule": 30.0},
}

# Channels: the layer every process publishes live events through.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 defaults socket_timeout to 5 s, the same as the layer's blocking BZPOPMIN: without a
            # longer one every idle consumer dies with "Timeout reading" (channels_redis issue 422).
            # After a Redis restart every pooled connection is dead; one immediate retry on a fresh connection
            # (redis-py's retry_on_error) keeps the first WebSocket handshake and push afterwards from failing.
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": 15,
                    "socket_connect_timeout": 5,
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "capacity": 1000,
            "expiry": 60,
            "prefix": "hub-asgi",
        },
    }
}

# Production hardening (checked by `manage.py check --deploy`).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes announces its version at every start (every manage.py command); its warnings still show.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}
