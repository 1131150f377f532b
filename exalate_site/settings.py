"""Settings for an Exalate for Xurrent node.

Everything an operator may change comes from the environment (or a `.env` file in the
project root), read with django-environ. DESIGN.md §3 is the list of variables.
"""

import base64
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long "
            "random string (or set DEBUG=1 for local development)."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"

# --- This node -------------------------------------------------------------------------

EXALATE_NODE_URL = env.str("EXALATE_NODE_URL", default="http://127.0.0.1:8000").rstrip("/")
EXALATE_ALLOW_PRIVATE_NETWORKS = env.bool("EXALATE_ALLOW_PRIVATE_NETWORKS", default=DEBUG)
EXALATE_INVITATION_TTL_HOURS = env.float("EXALATE_INVITATION_TTL_HOURS", default=72.0)
if EXALATE_INVITATION_TTL_HOURS <= 0:
    raise ImproperlyConfigured("EXALATE_INVITATION_TTL_HOURS must be a positive number.")
EXALATE_ACCEPT_RATE = env.str("EXALATE_ACCEPT_RATE", default="20/min")
# How many proxies of the operator's own stand in front of the node and append to
# X-Forwarded-For. 0: the header is the client's word and is ignored (the client address
# is REMOTE_ADDR); N: the N-th address from the right is the client (client_address.py).
EXALATE_TRUSTED_PROXIES = env.int("EXALATE_TRUSTED_PROXIES", default=0)
if EXALATE_TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("EXALATE_TRUSTED_PROXIES must be 0 or a positive number.")
EXALATE_LICENSE = env.str("EXALATE_LICENSE", default="evaluation").lower()
if EXALATE_LICENSE not in {"evaluation", "paid", "free"}:
    raise ImproperlyConfigured("EXALATE_LICENSE must be one of: evaluation, paid, free.")
EXALATE_PUBLIC = env.bool("EXALATE_PUBLIC", default=True)
EXALATE_EVALUATION_DAYS = env.int("EXALATE_EVALUATION_DAYS", default=30)
EXALATE_VERSION = "1.0.0"
# A Prometheus scraper sends it as "Authorization: Bearer …" to read /metrics.
EXALATE_METRICS_TOKEN = env.str("EXALATE_METRICS_TOKEN", default="")
# Keys that encrypt secrets at rest (Fernet keys, comma-separated): the first encrypts,
# all decrypt, so a new key goes first and an old one stays until `rotate_secret_keys`
# has run. Unset: one key derived from SECRET_KEY (nodes/encryption.py).
EXALATE_SECRET_KEYS = env.list("EXALATE_SECRET_KEYS", default=[])
for _key in EXALATE_SECRET_KEYS:
    try:
        if len(base64.urlsafe_b64decode(_key.encode("ascii"))) != 32:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            "EXALATE_SECRET_KEYS holds a value that is not a Fernet key (32 bytes in "
            'url-safe base64, e.g. from `python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`).'
        ) from None

# --- This node's Xurrent account (DESIGN.md §11) ------------------------------------------
# They seed the General Settings, where an admin can change them; the token is kept there
# encrypted. `make run` and `make demo` point them at the local simulator.
XURRENT_API_URL = env.str("XURRENT_API_URL", default="https://api.xurrent.com/v1").rstrip("/")
if urlsplit(XURRENT_API_URL).scheme not in ("http", "https"):
    raise ImproperlyConfigured(
        "XURRENT_API_URL must be an http(s) address, such as https://api.xurrent.com/v1."
    )
XURRENT_ACCOUNT = env.str("XURRENT_ACCOUNT", default="")
XURRENT_API_TOKEN = env.str("XURRENT_API_TOKEN", default="")
# How often Xurrent's webhooks may reach the receiver, per sending address (a DRF rate):
# a bulk update in Xurrent sends one call per request changed.
XURRENT_WEBHOOK_RATE = env.str("XURRENT_WEBHOOK_RATE", default="1200/min")
# How often the worker asks Xurrent for requests changed since the last poll (webhooks
# can be lost; the poll is the fallback).
XURRENT_POLL_SECONDS = env.float("XURRENT_POLL_SECONDS", default=30.0)
if XURRENT_POLL_SECONDS <= 0:
    raise ImproperlyConfigured("XURRENT_POLL_SECONDS must be a positive number of seconds.")
# The sync engine's budget of calls to the account: Xurrent allows 3,600 an hour and about
# 20 within 2 s. An account with a larger allowance (or a simulator) may say so here.
XURRENT_HOURLY_BUDGET = env.int("XURRENT_HOURLY_BUDGET", default=3600)
# Twins one worker handles side by side (reading and writing Xurrent, calling the peer).
SYNC_THREADS = env.int("SYNC_THREADS", default=4)
if SYNC_THREADS < 1:
    raise ImproperlyConfigured("SYNC_THREADS must be at least 1.")
# A node in a private network (not public) cannot be called: its worker asks each peer for
# the events waiting for it this often (and at once after sending it something).
SYNC_PULL_SECONDS = env.float("SYNC_PULL_SECONDS", default=3.0)
if SYNC_PULL_SECONDS <= 0:
    raise ImproperlyConfigured("SYNC_PULL_SECONDS must be a positive number of seconds.")
XURRENT_BURST = env.int("XURRENT_BURST", default=20)
if XURRENT_HOURLY_BUDGET < 1 or XURRENT_BURST < 3:
    raise ImproperlyConfigured(
        "XURRENT_HOURLY_BUDGET must be at least 1, XURRENT_BURST at least 3."
    )

# --- AI Assist on the sync rules page ------------------------------------------------------
# Any OpenAI-compatible chat completions API: they seed the General Settings, where an
# admin can change them; the key is kept there encrypted. Unset: AI Assist is off.
EXALATE_AI_URL = env.str("EXALATE_AI_URL", default="").rstrip("/")
if EXALATE_AI_URL and urlsplit(EXALATE_AI_URL).scheme not in ("http", "https"):
    raise ImproperlyConfigured(
        "EXALATE_AI_URL must be an http(s) address, such as https://api.openai.com/v1."
    )
EXALATE_AI_MODEL = env.str("EXALATE_AI_MODEL", default="")
EXALATE_AI_API_KEY = env.str("EXALATE_AI_API_KEY", default="")
# Seconds a draft may take, both calls to the model included; and drafts per user and hour.
EXALATE_AI_TIMEOUT = env.float("EXALATE_AI_TIMEOUT", default=60.0)
EXALATE_AI_DRAFTS_PER_HOUR = env.int("EXALATE_AI_DRAFTS_PER_HOUR", default=30)
if EXALATE_AI_TIMEOUT <= 0 or EXALATE_AI_DRAFTS_PER_HOUR < 1:
    raise ImproperlyConfigured(
        "EXALATE_AI_TIMEOUT and EXALATE_AI_DRAFTS_PER_HOUR must be positive numbers."
    )

_node_host = urlsplit(EXALATE_NODE_URL).hostname or "127.0.0.1"
_local_hosts = ["localhost", "127.0.0.1", "[::1]"]
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=sorted({_node_host, *(_local_hosts if DEBUG else [])})
)
_node_origin = "{0.scheme}://{0.netloc}".format(urlsplit(EXALATE_NODE_URL))
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[_node_origin])

# --- Applications ----------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "formtools",
    # Login lockout (django-axes): failures per user name and client address.
    "axes",
    # The project's own system checks (exalate_site/checks.py); no models.
    "exalate_site",
    # Lowest first: each app imports only those above it (DESIGN.md §2).
    "nodes",
    "xurrent",
    "connections",
    "invitations",
    "sync",
]

MIDDLEWARE = [
    # Outermost, so that no layer below can put a body back.
    "exalate_site.middleware.HeadWithoutBodyMiddleware",
    # A database or cache outage in a view: 503 with Retry-After instead of 500.
    "exalate_site.middleware.ServiceUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused by the lockout into its page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "exalate_site.urls"
WSGI_APPLICATION = "exalate_site.wsgi.application"

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

# --- Data ------------------------------------------------------------------------------

(BASE_DIR / "var").mkdir(exist_ok=True)
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers take the lock up front and wait for each other instead of failing with
    # "database is locked" when two requests write at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
# Persistent connections, checked before reuse: measured under gunicorn on PostgreSQL,
# /healthz served 178 requests/s with them and 57 without (a new connection per request).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)


def _cache_from_url(url: str) -> dict:
    """CACHE_URL as a CACHES entry; redis:// always means Django's own Redis backend.

    django-environ would pick django-redis when that package happens to be installed,
    which the project neither needs nor tests.
    """
    config = environ.Env.cache_url_config(url)
    if urlsplit(url).scheme.startswith("redis"):  # redis, rediss, rediscache
        config["BACKEND"] = "django.core.cache.backends.redis.RedisCache"
        # URL query options reach redis-py, which spells them in lower case. Short
        # timeouts: a Redis that does not answer must not hold requests for minutes.
        options = {key.lower(): value for key, value in config.get("OPTIONS", {}).items()}
        options.setdefault("socket_connect_timeout", 2)
        options.setdefault("socket_timeout", 2)
        config["OPTIONS"] = options
    return config


CACHES = {"default": _cache_from_url(env.str("CACHE_URL", default="locmemcache://exalate"))}

# Sessions live in the database, which every process and server shares, with a copy in the
# cache when the cache is shared too (Redis). A per-process cache (local memory, the
# default) would hand each gunicorn worker a copy of its own that goes stale as soon as
# another worker saves the session: measured on a node with two workers, the initiate
# wizard fell back a step in 5 walks of 8 when its requests were spread over both.
_PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}
SESSION_ENGINE = (
    "django.contrib.sessions.backends.db"
    if CACHES["default"]["BACKEND"] in _PER_PROCESS_CACHES
    else "django.contrib.sessions.backends.cached_db"
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # Refuses a login while its user name and client address are locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Login lockout (django-axes) -------------------------------------------------------
# Per user name *and* client address: an attacker locks out only their own address, never
# the real user at theirs. Attempts live in the database, so every app server counts them.
EXALATE_LOGIN_FAILURE_LIMIT = env.int("EXALATE_LOGIN_FAILURE_LIMIT", default=5)
EXALATE_LOGIN_COOLOFF_MINUTES = env.float("EXALATE_LOGIN_COOLOFF_MINUTES", default=15.0)
if EXALATE_LOGIN_FAILURE_LIMIT < 1 or EXALATE_LOGIN_COOLOFF_MINUTES <= 0:
    raise ImproperlyConfigured(
        "EXALATE_LOGIN_FAILURE_LIMIT and EXALATE_LOGIN_COOLOFF_MINUTES must be positive numbers."
    )
AXES_ENABLED = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = EXALATE_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=EXALATE_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "exalate_site.client_address.client_address"
AXES_LOCKOUT_CALLABLE = "exalate_site.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Tries while locked out do not push the end of the lockout further: the time the page
# announces holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "connections:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` gathers the files that whitenoise serves (make serve runs it).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production: names carry a hash of the content, so browsers may keep a file for a year
    # and still get a changed one at once; gzip copies are made once, at collectstatic.
    # Development serves the files as they are, straight from the app folders.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Source maps are read only by browsers' developer tools: compressing them would double
# the time collectstatic takes for nothing a visitor downloads.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]

# --- Security (production unless DEBUG) --------------------------------------------------

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("SECURE_PROXY_SSL", default=False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- API -------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["exalate_site.parsers.BoundedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "accept": EXALATE_ACCEPT_RATE,
        "xurrent_webhook": XURRENT_WEBHOOK_RATE,
    },
    # DRF's default (None) believes any X-Forwarded-For; any throttle that keeps DRF's own
    # get_ident follows the same rule as exalate_site.client_address.
    "NUM_PROXIES": EXALATE_TRUSTED_PROXIES,
    "EXCEPTION_HANDLER": "exalate_site.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Exalate for Xurrent node API",
    "DESCRIPTION": "The REST API that connected nodes use to talk to this node.",
    "VERSION": EXALATE_VERSION,
    # Applies the views' annotations before the first schema (exalate_site/openapi.py).
    "DEFAULT_GENERATOR_CLASS": "exalate_site.schema_generator.SchemaGenerator",
    # What operation ids and tags leave out of the path ("v1_instance_retrieve", tag
    # "v1"). Said here, not guessed from the endpoints (their common prefix), so that the
    # ids stay as they are whatever views are served beside the API.
    "SCHEMA_PATH_PREFIX": "/api",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # DRF refuses a blank string unless a field allows it: say so (minLength 1).
    "ENFORCE_NON_BLANK_FIELDS": True,
}

# --- Logging: everything to stdout, where the process manager collects it ---------------

LOG_FORMAT = env.str("LOG_FORMAT", default="plain").lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
_formatters = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    # One JSON object a line, for log collectors (LOG_FORMAT=json).
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    },
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Only the formatter in use: logging builds every one listed (and imports its module).
    "formatters": {LOG_FORMAT: _formatters[LOG_FORMAT]},
    "filters": {
        "no_client_error_tracebacks": {"()": "exalate_site.logging.NoClientErrorTracebacks"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["no_client_error_tracebacks"],
        },
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Request lines can carry codes in query strings; never echo request bodies.
        "django.server": {"level": "INFO"},
        # django-axes: failures and lockouts are warnings; its start-up banner and
        # successful logins are not worth a line each.
        "axes": {"level": "WARNING"},
        # httpx logs every call it makes at INFO: thousands a minute for a busy worker
        # (each note read, each notification). This node logs what its calls mean; the
        # client's own failures still come through as warnings.
        "httpx": {"level": "WARNING"},
    },
}
