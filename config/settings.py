"""Settings for the LTR pre-backup dashboard, all read from the environment.

With no environment at all the dashboard runs in demo mode: SQLite, the Azure simulator (`azuresim`) on
loopback, and its demo tenant. Production sets DEMO_MODE=0 and the variables listed in the README; a
missing or malformed value stops the process at start-up rather than misbehaving later.
"""

import base64
import hashlib
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise ImproperlyConfigured(f"Set the environment variable {name} (see the README's settings table).")
    return value


def env_required(name: str) -> str:
    """A production value that must be set, and not to nothing (an empty AZURE_CLIENT_ID started the process)."""
    value = env_str(name).strip()
    if not value:
        raise ImproperlyConfigured(f"{name} is set but empty; it is required in production (see the README).")
    return value


def env_required_list(name: str) -> list[str]:
    """A required comma-separated value with at least one item (ALLOWED_HOSTS="," had started the process)."""
    items = env_list(name)
    if not items:
        env_str(name)  # unset: says to set it
        raise ImproperlyConfigured(f"{name} is set but empty; it is required in production (see the README).")
    return items


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of `choices`, in any case; unset or blank is the default."""
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {os.environ[name]!r}.")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEMO_MODE = env_bool("DEMO_MODE", True)
# Off unless asked for, demo mode included: Django's debug pages list every URL and setting.
DEBUG = env_bool("DEBUG", False)

if DEMO_MODE:
    SECRET_KEY = os.environ.get("SECRET_KEY", "demo-mode-only-secret-key-never-use-in-production-0123456789")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
else:
    SECRET_KEY = env_str("SECRET_KEY")
    if SECRET_KEY.startswith("demo-mode-only") or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be a random value of 32 characters or more in production, "
                                   "not the demo key (python -c 'import secrets; print(secrets.token_urlsafe(50))').")
    ALLOWED_HOSTS = env_required_list("ALLOWED_HOSTS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks_db",
    "armclient",
    "dashboard",
    "checks",
    "schedules",
    "alerts",
    "backups",
    "evidence",
]

MIDDLEWARE = [
    "dashboard.request_log.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.ratelimit.RateLimitMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "dashboard.middleware.HtmxSignInRedirectMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "dashboard.roles.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.csp",
                "dashboard.context_processors.demo_mode",
                "dashboard.context_processors.subscription_names",
                "dashboard.context_processors.roles",
            ],
        },
    },
]

# One URL selects the database: SQLite by default, PostgreSQL in production and in CI's second run.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'dashboard.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the task worker write to one SQLite file: WAL and a busy timeout keep them from
    # failing each other with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "dashboard.User"
LOGIN_URL = "signin"
LOGIN_REDIRECT_URL = "server_list"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
# In demo mode static files come straight from static/ (no collectstatic step before `make run`).
WHITENOISE_USE_FINDERS = DEMO_MODE
WHITENOISE_AUTOREFRESH = DEMO_MODE or DEBUG
if DEMO_MODE:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEMO_MODE or DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Sessions live in the database: the pending sign-in flows are kept there, never in a cookie.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: the identity provider's redirect back to /auth/callback is a cross-site navigation
# that must carry the session holding the pending flow (response_mode=query).
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE = env_bool("SECURE", not DEMO_MODE)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SECURE)
# Load balancers probe /healthz over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
# Per minute: POSTs of one signed-in user (runs, batches, schedules, channels...), and sign-in starts from one
# client address; beyond them the answer is 429 with Retry-After (dashboard.ratelimit).
RATE_LIMIT_POSTS_PER_MINUTE = env_int("RATE_LIMIT_POSTS_PER_MINUTE", 120)
RATE_LIMIT_SIGNINS_PER_MINUTE = env_int("RATE_LIMIT_SIGNINS_PER_MINUTE", 30)
# "Import from Azure": one user's listing is kept this many seconds (in the database, for every web process) so
# reloading the page does not list the whole fleet from ARM again; "Refresh from Azure" reads it anew.
IMPORT_LISTING_TTL_SECONDS = env_int("IMPORT_LISTING_TTL_SECONDS", 300)
# Servers one import registers at most; the rest stay offered for the next one.
IMPORT_MAX_PER_POST = env_int("IMPORT_MAX_PER_POST", 1000)
# How long "Import from Azure" may list the servers of all subscriptions, inside one web request (the README's
# gunicorn command allows 180 s); a subscription not listed by then says so.
IMPORT_LISTING_SECONDS = env_int("IMPORT_LISTING_SECONDS", 120)
# Django refuses a POST with more fields than this (400) before any view sees it: room for a full import and
# a user who ticked more than it takes, who is told so rather than shown a bare 400.
DATA_UPLOAD_MAX_NUMBER_FIELDS = IMPORT_MAX_PER_POST + 1000
# Subscription display names are read from ARM with a user's token; older than this, a worker reads them again.
SUBSCRIPTION_NAMES_MAX_AGE_HOURS = env_int("SUBSCRIPTION_NAMES_MAX_AGE_HOURS", 24)
# A sign-in to a tenant without names (or with old ones) has the worker read them as that person.
SUBSCRIPTION_NAMES_AT_SIGN_IN = env_bool("SUBSCRIPTION_NAMES_AT_SIGN_IN", True)
# Roles come from the ID token's app roles (dashboard.roles). A tenant where nobody has signed in with one keeps
# "everyone may do everything"; with this on, a user without an app role gets no access even there.
APP_ROLES_REQUIRED = env_bool("APP_ROLES_REQUIRED", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
X_FRAME_OPTIONS = "DENY"

# ---- Microsoft Entra ID and Azure Resource Manager ---------------------------------------------------
# Endpoints and delegated scope per cloud (../shared/azure/README.md, "Clouds").
AZURE_CLOUDS = {
    "public": {
        "authority_host": "https://login.microsoftonline.com",
        "arm_endpoint": "https://management.azure.com",
        "arm_scope": "https://management.azure.com/user_impersonation",
    },
    "usgov": {
        "authority_host": "https://login.microsoftonline.us",
        "arm_endpoint": "https://management.usgovcloudapi.net",
        "arm_scope": "https://management.core.usgovcloudapi.net/user_impersonation",
    },
    "china": {
        "authority_host": "https://login.chinacloudapi.cn",
        "arm_endpoint": "https://management.chinacloudapi.cn",
        "arm_scope": "https://management.chinacloudapi.cn/user_impersonation",
    },
}

AZURESIM_HOST = os.environ.get("AZURESIM_HOST", "127.0.0.1")
AZURESIM_HTTPS_PORT = env_int("AZURESIM_HTTPS_PORT", 8441)
AZURESIM_HTTP_PORT = env_int("AZURESIM_HTTP_PORT", 8440)
AZURESIM_STATE_DIR = Path(os.environ.get("AZURESIM_STATE_DIR", VAR_DIR / "azuresim"))
AZURESIM_SCENARIO = Path(os.environ.get("AZURESIM_SCENARIO", BASE_DIR / "azuresim" / "scenarios" / "demo.json"))

if DEMO_MODE:
    _sim = f"https://{AZURESIM_HOST}:{AZURESIM_HTTPS_PORT}"
    _cloud = {"authority_host": _sim, "arm_endpoint": _sim, "arm_scope": AZURE_CLOUDS["public"]["arm_scope"]}
    AZURE_CLOUD = "simulator"
    AZURE_CLIENT_ID = os.environ.get("AZURE_CLIENT_ID", "d3d3d3d3-0000-4000-8000-000000000001")
    AZURE_CLIENT_SECRET = os.environ.get("AZURE_CLIENT_SECRET", "demo-client-secret")
    AZURE_CA_BUNDLE = os.environ.get("AZURE_CA_BUNDLE", str(AZURESIM_STATE_DIR / "ca.pem"))
else:
    AZURE_CLOUD = os.environ.get("AZURE_CLOUD", "public")
    if AZURE_CLOUD not in AZURE_CLOUDS:
        raise ImproperlyConfigured(f"AZURE_CLOUD must be one of {', '.join(AZURE_CLOUDS)}, not {AZURE_CLOUD!r}.")
    _cloud = AZURE_CLOUDS[AZURE_CLOUD]
    AZURE_CLIENT_ID = env_required("AZURE_CLIENT_ID")
    AZURE_CLIENT_SECRET = env_required("AZURE_CLIENT_SECRET")
    # Only for a private CA (the simulator's); empty means the system's trust store.
    AZURE_CA_BUNDLE = os.environ.get("AZURE_CA_BUNDLE", "")

AZURE_TENANT_ID = os.environ.get("AZURE_TENANT_ID", "organizations")
# A multi-tenant registration (organizations) lets any Entra organization sign in and become its own tenant here;
# this names the ones this deployment serves (comma-separated tenant ids). Empty: any the registration admits.
ALLOWED_TENANT_IDS = {tid.lower() for tid in env_list("ALLOWED_TENANT_IDS")}
AZURE_AUTHORITY_HOST = os.environ.get("AZURE_AUTHORITY_HOST", _cloud["authority_host"]).rstrip("/")
AZURE_ARM_ENDPOINT = os.environ.get("AZURE_ARM_ENDPOINT", _cloud["arm_endpoint"]).rstrip("/")
AZURE_ARM_SCOPE = os.environ.get("AZURE_ARM_SCOPE", _cloud["arm_scope"])

# Demo mode is the default (`make run`) and runs on public keys (SECRET_KEY, the token cache's, METRICS_TOKEN):
# when nobody asked for it by name and the environment points anywhere but this machine, stop rather than run a
# production deployment on them.
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_ELSEWHERE = [name for name, hosts in (
    ("ALLOWED_HOSTS", [host.lower() for host in env_list("ALLOWED_HOSTS")]),
    ("AZURE_AUTHORITY_HOST", [urlsplit(os.environ.get("AZURE_AUTHORITY_HOST", "//127.0.0.1")).hostname]),
    ("AZURE_ARM_ENDPOINT", [urlsplit(os.environ.get("AZURE_ARM_ENDPOINT", "//127.0.0.1")).hostname]),
) if any(host not in _LOOPBACK for host in hosts)]
if DEMO_MODE and not os.environ.get("DEMO_MODE") and _ELSEWHERE:  # (unset, or set empty: env_bool's default)
    raise ImproperlyConfigured(
        f"DEMO_MODE is on by default, but {', '.join(_ELSEWHERE)} point beyond this machine: set DEMO_MODE=0 for "
        "production (with the settings the README lists), or DEMO_MODE=1 to run the demo on its public keys.")
# MSAL asks login.microsoftonline.com to vouch for any other authority host; the simulator is not one.
AZURE_INSTANCE_DISCOVERY = env_bool("AZURE_INSTANCE_DISCOVERY", not DEMO_MODE)
AZURE_LTR_API_VERSION = os.environ.get("AZURE_LTR_API_VERSION", "2024-08-01")
# Where the identity provider sends the browser back; derived from the request when empty.
AZURE_REDIRECT_URI = os.environ.get("AZURE_REDIRECT_URI", "")

# ARM call limits (seconds). ARM's own provider timeout is 60 s, so the read timeout sits just above it.
ARM_CONNECT_TIMEOUT = float(os.environ.get("ARM_CONNECT_TIMEOUT", "5"))
ARM_READ_TIMEOUT = float(os.environ.get("ARM_READ_TIMEOUT", "65"))
ARM_MAX_RETRIES = env_int("ARM_MAX_RETRIES", 3)
ARM_BACKOFF_FACTOR = float(os.environ.get("ARM_BACKOFF_FACTOR", "0.8"))
ARM_CHECK_DEADLINE = float(os.environ.get("ARM_CHECK_DEADLINE", "120"))
# The longest single wait before a retry: a longer Retry-After ends the check as throttled ("try again
# after ...") instead of holding a worker thread asleep.
ARM_MAX_RETRY_WAIT = float(os.environ.get("ARM_MAX_RETRY_WAIT", "20"))
ARM_MAX_BODY_BYTES = env_int("ARM_MAX_BODY_BYTES", 1024 * 1024)
# The longest backoff between two attempts (before Retry-After, which ARM_MAX_RETRY_WAIT bounds).
ARM_BACKOFF_MAX = float(os.environ.get("ARM_BACKOFF_MAX", "30"))
# ARM's buckets per subscription and principal (armclient.pacing): writes 200 tokens refilled at 10 per
# second, reads 250 at 25 per second, ARM's documented limits.
ARM_WRITE_BUCKET_CAPACITY = float(os.environ.get("ARM_WRITE_BUCKET_CAPACITY", "200"))
ARM_WRITE_BUCKET_REFILL_PER_SECOND = float(os.environ.get("ARM_WRITE_BUCKET_REFILL_PER_SECOND", "10"))
ARM_READ_BUCKET_CAPACITY = float(os.environ.get("ARM_READ_BUCKET_CAPACITY", "250"))
ARM_READ_BUCKET_REFILL_PER_SECOND = float(os.environ.get("ARM_READ_BUCKET_REFILL_PER_SECOND", "25"))
# Entra ID's token endpoint and discovery: how long to wait for an answer.
ENTRA_READ_TIMEOUT = float(os.environ.get("ENTRA_READ_TIMEOUT", "30"))
# A check still "running" (or "queued") this long after it started lost its worker (killed, crashed): it
# is marked interrupted. It must be longer than any check can take, or a live check would be marked.
CHECK_STALE_AFTER = float(os.environ.get("CHECK_STALE_AFTER", "600"))
_LONGEST_CHECK = (
    2 * ENTRA_READ_TIMEOUT + ARM_CHECK_DEADLINE + 2 * (ARM_READ_TIMEOUT + ARM_CONNECT_TIMEOUT)
)  # a token refresh, the call (deadline plus one read past it), a CAE refresh and its second call
if CHECK_STALE_AFTER <= _LONGEST_CHECK:
    raise ImproperlyConfigured(
        f"CHECK_STALE_AFTER ({CHECK_STALE_AFTER:.0f} s) must be longer than the longest a check can take with "
        f"these timeouts ({_LONGEST_CHECK:.0f} s), or live checks would be marked interrupted."
    )
# The bearer token Prometheus sends to /metrics; empty turns the endpoint off (401 for everyone).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "demo-metrics-token" if DEMO_MODE else "")
# A server whose last passing check is older than this counts as stale on the server list.
STALE_AFTER_HOURS = float(os.environ.get("STALE_AFTER_HOURS", "24"))
# "No successful LTR backup in N days" for a tenant that has not set its own N (the LTR backup alerts page);
# the worker looks for such gaps every LTR_GAP_POLL_SECONDS.
LTR_GAP_DAYS = env_int("LTR_GAP_DAYS", 7)
LTR_GAP_POLL_SECONDS = float(os.environ.get("LTR_GAP_POLL_SECONDS", "600"))
# Checks one worker process runs at once (threads); many at once is what lets a sweep keep up with ARM.
WORKER_THREADS = env_int("WORKER_THREADS", 8)

# Token caches are encrypted at rest with Fernet. TOKEN_CACHE_KEYS is a comma-separated list: the first
# key encrypts, every key decrypts, so a key is rotated by putting a new one first.
if DEMO_MODE and not os.environ.get("TOKEN_CACHE_KEYS"):
    _derived = hashlib.sha256(b"token-cache:" + SECRET_KEY.encode()).digest()
    TOKEN_CACHE_KEYS = [base64.urlsafe_b64encode(_derived).decode()]
else:
    TOKEN_CACHE_KEYS = env_required_list("TOKEN_CACHE_KEYS")
try:  # a malformed key stops start-up, not the first sign-in
    from cryptography.fernet import Fernet

    [Fernet(key) for key in TOKEN_CACHE_KEYS]
except (ValueError, TypeError):
    raise ImproperlyConfigured(
        "TOKEN_CACHE_KEYS must be comma-separated Fernet keys (32 url-safe base64-encoded bytes each; "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')."
    ) from None

# Content-Security-Policy: our own scripts and styles only; no inline code, no eval.
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    # Signing out POSTs here and is redirected to the identity provider's end-session page; browsers
    # apply form-action to that redirect too.
    "form-action": [
        CSP.SELF,
        AZURE_AUTHORITY_HOST,
        *([f"http://{AZURESIM_HOST}:{AZURESIM_HTTP_PORT}"] if DEMO_MODE else []),
    ],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# ---- Background tasks ---------------------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# ---- Logging: one line per event (LOG_FORMAT=json for structured lines); never a token -----------------
LOG_FORMAT = env_choice("LOG_FORMAT", ("plain", "json"), "plain")  # ("JSON" had fallen back to plain, silently)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "dashboard.log_redaction.RedactTokensFilter"},
                "one_line_per_check": {"()": "checks.log_lines.OneLinePerCheck"}},
    "formatters": {
        "plain": {"()": "dashboard.log_redaction.RedactingFormatter",
                  "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "dashboard.log_format.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact_tokens"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # msal logs request details at DEBUG; keep it at WARNING whatever the root level is.
        "msal": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # runserver's own access log would repeat dashboard.requests' lines, and its request line carries the
        # query string (a sign-in callback's code): only its warnings, and through our redacting handler.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # Django's default config gives "django" a console handler of its own (unredacted, DEBUG only): ours only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A check's task starting and ending: the check's own line (checks.tasks) says it, once.
        "django.tasks": {"filters": ["one_line_per_check"]},
        "gunicorn.error": {"handlers": ["console"], "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "propagate": False},
    },
}
# No record that reaches no handler is printed past the redaction by Python's last-resort handler.
logging.lastResort = None

# ---- Schedules (the schedules app) -----------------------------------------------------------------------
# How often the checks worker looks for due schedules (seconds): a run starts at most this late.
SCHEDULES_POLL_SECONDS = float(os.environ.get("SCHEDULES_POLL_SECONDS", "20"))
# A due run that could not reach Entra ID to renew its owner's token is tried again this much later
# (seconds), rather than at its next slot.
SCHEDULES_RETRY_SECONDS = float(os.environ.get("SCHEDULES_RETRY_SECONDS", "300"))
# At most this many due schedules fired per poll (the rest on the next poll).
SCHEDULES_FIRE_LIMIT = env_int("SCHEDULES_FIRE_LIMIT", 100)
# At most this many checks queued or running per tenant: a batch or a run that would pass it is refused whole.
MAX_ACTIVE_CHECKS_PER_TENANT = env_int("MAX_ACTIVE_CHECKS_PER_TENANT", 10000)

# ---- Alerts (alerts/): e-mail over SMTP and webhooks; see alerts/__init__.py ----------------------------
# Django 6.1's MAILERS, filled from the usual EMAIL_* variables (its EMAIL_* settings are deprecated).
_email_tls, _email_ssl = env_bool("EMAIL_USE_TLS", False), env_bool("EMAIL_USE_SSL", False)
if _email_tls and _email_ssl:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS, port 587) or EMAIL_USE_SSL (port 465), not both.")
MAILERS = {
    "default": {
        "BACKEND": os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend"),
        "OPTIONS": {
            "host": os.environ.get("EMAIL_HOST", "localhost"),
            "port": env_int("EMAIL_PORT", 25),
            "username": os.environ.get("EMAIL_HOST_USER", ""),
            "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
            "use_tls": _email_tls,
            "use_ssl": _email_ssl,
            "timeout": float(os.environ.get("EMAIL_TIMEOUT", "10")),
        },
    }
}
if MAILERS["default"]["BACKEND"] != "django.core.mail.backends.smtp.EmailBackend":
    MAILERS["default"]["OPTIONS"] = {}  # the console/file/locmem backends take none of these
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "LTR pre-backup checks <ltr-checks@localhost>")
# Webhook targets may be plain http only in demo/debug (or when allowed here); never loopback, link-local or
# private addresses (SSRF) unless ALERT_WEBHOOK_ALLOW_PRIVATE=1, e.g. for the demo's local catcher.
ALERT_WEBHOOK_ALLOW_HTTP = env_bool("ALERT_WEBHOOK_ALLOW_HTTP", DEMO_MODE or DEBUG)
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)
ALERT_WEBHOOK_TIMEOUT = float(os.environ.get("ALERT_WEBHOOK_TIMEOUT", "10"))
# Only for a private CA (an internal relay); empty means certifi's public roots.
ALERT_WEBHOOK_CA_BUNDLE = os.environ.get("ALERT_WEBHOOK_CA_BUNDLE", "")
# Seconds to wait before each retry of a failed delivery; after the last one it is marked failed.
try:
    ALERT_RETRY_DELAYS = [float(s) for s in env_list("ALERT_RETRY_DELAYS", "30,120,600")]
except ValueError:
    raise ImproperlyConfigured("ALERT_RETRY_DELAYS must be comma-separated seconds, e.g. 30,120,600.") from None
if any(d < 0 for d in ALERT_RETRY_DELAYS) or not 0 < ALERT_WEBHOOK_TIMEOUT <= 120:
    raise ImproperlyConfigured("ALERT_RETRY_DELAYS must be >= 0 and ALERT_WEBHOOK_TIMEOUT within (0, 120] seconds.")
# Alert storms: a channel sends at most ALERT_BURST_LIMIT alerts one by one in any ALERT_BURST_WINDOW seconds;
# the rest are held and sent together as one summary a window later (alerts/bursts.py). 0 holds nothing.
ALERT_BURST_LIMIT = env_int("ALERT_BURST_LIMIT", 10)
ALERT_BURST_WINDOW = float(env_int("ALERT_BURST_WINDOW", 300))
if ALERT_BURST_LIMIT < 0 or not 0 < ALERT_BURST_WINDOW <= 86400:
    raise ImproperlyConfigured("ALERT_BURST_LIMIT must be >= 0 and ALERT_BURST_WINDOW within 1..86400 seconds.")
# "Send a test message" at most this many times an hour per tenant: a test is never held in a burst, so without
# a limit the button would mail or post anywhere as fast as it is pressed.
ALERT_TESTS_PER_HOUR = env_int("ALERT_TESTS_PER_HOUR", 20)
if ALERT_TESTS_PER_HOUR < 1:
    raise ImproperlyConfigured("ALERT_TESTS_PER_HOUR must be 1 or more.")
# The alerts' delivery log keeps a message this many days after it was raised, then the worker deletes it
# (alerts.delivery.prune_old_deliveries): a storm a day over 10,000 servers writes ~20,000 rows. 0 keeps all.
ALERT_LOG_RETENTION_DAYS = env_int("ALERT_LOG_RETENTION_DAYS", 90)
if ALERT_LOG_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("ALERT_LOG_RETENTION_DAYS must be >= 0 (0 keeps every delivery).")
# Links in alerts point here (a worker has no request to take the host from): the dashboard's public URL.
DASHBOARD_URL = os.environ.get("DASHBOARD_URL", f"http://127.0.0.1:{os.environ.get('PORT', '8000')}" if DEMO_MODE
                               else "").rstrip("/")

# What the checks worker runs next to its reaper: (dotted path of a function taking no argument, every N s).
WORKER_PERIODIC_JOBS = [
    ("schedules.firing.fire_due_schedules", SCHEDULES_POLL_SECONDS),
    ("alerts.delivery.reap_stuck", 60.0),
    ("alerts.delivery.mend_bursts", 60.0),
    ("alerts.delivery.prune_old_deliveries", 600.0),
    ("dashboard.housekeeping.clear_expired_sessions", 3600.0),
    ("dashboard.ratelimit.clear_old_windows", 600.0),
    ("dashboard.subscriptions.refresh_old_names", 1800.0),
    ("backups.watch.alert_gaps", LTR_GAP_POLL_SECONDS),
]
