"""Settings, read from the environment through django-environ.

Production is the default: without ``DJANGO_DEBUG=true`` the process refuses to start unless
``DJANGO_SECRET_KEY`` (not the development key) and ``DJANGO_ALLOWED_HOSTS`` are set.
``DJANGO_DEBUG=true`` (``make run``, ``make test``) is a development set-up: SQLite, Celery eager,
console SMS.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

_DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105 (dev default, refused below when DEBUG is off)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false (production)."
    )

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is false (production)."
    )
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A form sent with a stale or missing token gets the portal's error page, in the visitor's language.
CSRF_FAILURE_VIEW = "config.views.csrf_failure"
# Behind a TLS-terminating proxy, trust its header so absolute URLs (Twilio's signed callback
# URL among them) are built with https.
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "config.apps.AxesConfig",  # django-axes, with a translated name
    "csp",
    "config.apps.SiteConfig",
    "core",
    "core.audit",
    "invoices",
    "returns",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Django's, without a path's language look-up when no URL has a prefix (config/middleware.py).
    "config.middleware.LocaleMiddleware",
    "config.middleware.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "config.middleware.PrivatePagesMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-csp's, with the header built once per process (config/middleware.py).
    "config.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes requires: it turns a locked-out log-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

if not DEBUG:
    # Production serves collected static files itself; runserver and tests use staticfiles.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        # Only for fragments rendered in loops where Django's engine costs more than the page's
        # reads (Invoice Management's rows: ``returns.templatetags.portal.invoice_rows``).
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
    },
]

# Caches: both in each process's own memory (nothing here needs Redis, so a Redis outage never
# breaks a page). "template_fragments" keeps the parts of the pages' layout that depend only
# on the language and the page ({% cache %} in templates/base.html and
# billing/invoice_management.html): a few dozen small entries, rendered once per process
# instead of on every request (issue 16, P2). A deployment's new templates come with new
# processes; in development a template's change empties it (config.apps).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "template_fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "template-fragments",
        "TIMEOUT": None,
        "OPTIONS": {"MAX_ENTRIES": 1000},
    },
}

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections in production: a web or worker process keeps its connection for
# CONN_MAX_AGE seconds instead of opening one (TLS, authentication, a new backend process) per
# request or task; health checks ping a reused connection before the first query of each
# request or task, so one that a failover, a pooler or an operator closed is replaced instead
# of failing that request. 0 (close after each request) in development and tests, as before.
DATABASES["default"].setdefault(
    "CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0 if DEBUG else 60)
)
DATABASES["default"].setdefault(
    "CONN_HEALTH_CHECKS", env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
)
# The few statements written out for hot paths (core.sql.prepared_cursor) are prepared on a
# connection once run 5 times: PostgreSQL then plans each once per connection, not per request.
# Off (DATABASE_PREPARED_STATEMENTS=false) behind a pooler that does not keep prepared statements
# across transactions (PgBouncer in transaction mode before 1.21). The ORM's statements are
# never prepared either way (client-side binding).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Log-in throttling (django-axes) on both log-in pages (/accounts/login/ and /admin/login/):
# after AXES_FAILURE_LIMIT failed attempts for one username, or from one address, that username
# or address is refused (even with the right password) for AXES_COOLOFF_TIME; staff unlock it
# earlier in the back office (Axes > Access attempts: delete the row). A success resets the
# count. The address is REMOTE_ADDR (behind a proxy, set AXES_IPWARE_META_PRECEDENCE_ORDER).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, reading the logged-in user by a statement written out once.
    "config.auth.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.views.locked_out"
AXES_SENSITIVE_PARAMETERS = ["password"]
# Sessions: customers stay logged in for SESSION_COOKIE_AGE (two weeks, Django's default);
# staff sessions end after STAFF_SESSION_SECONDS (config.signals sets the expiry at log-in).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
# Django's database sessions (a log-out or a lock-out ends one at once), read by a statement
# written out once instead of an ORM lookup built on every request (config/sessions.py).
SESSION_ENGINE = "config.sessions"
STAFF_SESSION_SECONDS = env.int("STAFF_SESSION_SECONDS", default=8 * 3600)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"  # the home view sends staff to /admin/, customers to their invoices
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Password reset sends a link by email: its pages are routed only when an email server is
# configured (EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587); otherwise a
# forgotten password is reset by staff in the back office.
_EMAIL_URL = env.str("EMAIL_URL", default="")
if _EMAIL_URL:
    globals().update(env.email_url_config(_EMAIL_URL))
elif DEBUG:
    # Development without a mail server: emails (digital invoices) are printed instead.
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
PASSWORD_RESET_ENABLED = bool(_EMAIL_URL)
# A digital invoice is also emailed when the customer gives an address: only where mail can
# go out (a configured server, or the console in development).
INVOICE_EMAIL_ENABLED = bool(_EMAIL_URL) or DEBUG
# Return notices by email, beside or instead of SMS as the customer chooses: the same condition.
NOTIFICATION_EMAIL_ENABLED = env.bool("NOTIFICATION_EMAIL_ENABLED", default=INVOICE_EMAIL_ENABLED)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

# Internationalisation: English and Simplified Chinese; the business runs on Beijing time.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
BUSINESS_TIME_ZONE = "Asia/Shanghai"

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded red-letter forms are private: stored outside any URL space and served only through
# an authorised view (R12). There is deliberately no MEDIA_URL route.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "private_media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {
        "BACKEND": "returns.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT)},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage",
    },
}
# Several web replicas and workers share the private files through an S3-compatible bucket
# (set PRIVATE_MEDIA_S3_BUCKET, and the endpoint for OSS/COS/MinIO); without one they stay on
# this machine's disk, which only a single web process can use.
PRIVATE_MEDIA_S3_BUCKET = env.str("PRIVATE_MEDIA_S3_BUCKET", default="")
if PRIVATE_MEDIA_S3_BUCKET:
    STORAGES["private"] = {
        "BACKEND": "returns.storage_s3.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": PRIVATE_MEDIA_S3_BUCKET,
            "endpoint_url": env.str("PRIVATE_MEDIA_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("PRIVATE_MEDIA_S3_REGION", default="") or None,
            "access_key": env.str("PRIVATE_MEDIA_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("PRIVATE_MEDIA_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("PRIVATE_MEDIA_S3_PREFIX", default="private"),
            "default_acl": None,  # the bucket's own (private) policy; nothing public
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
RED_LETTER_FORM_MAX_BYTES = 10 * 1024 * 1024
# Uploads (returns/uploads.py): images above this many pixels are refused before decoding; a
# return takes at most RED_LETTER_FORMS_PER_RETURN uploads (replacements included) and a
# customer at most RED_LETTER_FORM_DAILY_BYTES of uploads in 24 hours.
RED_LETTER_FORM_MAX_PIXELS = env.int("RED_LETTER_FORM_MAX_PIXELS", default=50_000_000)
RED_LETTER_FORMS_PER_RETURN = env.int("RED_LETTER_FORMS_PER_RETURN", default=10)
RED_LETTER_FORM_DAILY_BYTES = env.int("RED_LETTER_FORM_DAILY_BYTES", default=100 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Celery: eager (in-process) unless a broker is configured.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
# The longest any task waits before it runs (again): a retry's backoff (retry_backoff_max, the
# SMS send's own backoffs) or the wait before asking the tax system for a result. Every task
# stays within it (tests/test_broker_visibility.py).
TASK_LONGEST_COUNTDOWN_SECONDS = 600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes every database connection before and after each task unless
# this is set; it is, so that the worker follows CONN_MAX_AGE and CONN_HEALTH_CHECKS like the
# web process (config.celery applies them around each task) and recycles its connection only
# every 1000 tasks besides.
CELERY_DB_REUSE_MAX = 1000
# Publishing must fail fast when Redis is down: the request that committed the work must not
# hang; the sweeper re-enqueues what was not published.
# Redis transport: a dead or unroutable broker fails in seconds instead of hanging the request
# (socket_timeout stays above the worker's 1 s BRPOP poll).
# Redis hands a message that a worker took but never acknowledged (acks_late: acknowledged once
# the task has run) to another worker after visibility_timeout. A worker takes a message with a
# countdown at once and holds it until it is due, then runs it for up to the hard time limit:
# the timeout outlasts both, plus a minute for a busy pool, or a retry still waiting its turn
# would run twice (harmless, every task being idempotent, but wasted). Any longer only delays
# the redelivery of a dead worker's messages: 13 minutes instead of the hour it was (the
# sweeper usually re-enqueues their work sooner).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TASK_LONGEST_COUNTDOWN_SECONDS + CELERY_TASK_TIME_LIMIT + 60,
    "max_retries": 2,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2}
CELERY_TIMEZONE = "Asia/Shanghai"
# A back-office action on more rows than a request should take on runs in the background in
# slices of about this many seconds (core.bulk), each well within the task's time limits.
BULK_ACTION_SLICE_SECONDS = env.float("BULK_ACTION_SLICE_SECONDS", default=10.0)
CELERY_TASK_ROUTES = {
    "returns.tasks.*": {"queue": "returns"},
    "notifications.tasks.*": {"queue": "sms"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_CONSUMER = "config.celery:QuickReconnectConsumer"
# A worker whose broker went away tries again every this many seconds at most.
BROKER_RECONNECT_MAX_SECONDS = env.float("BROKER_RECONNECT_MAX_SECONDS", default=3.0)

# The task outbox (core/outbox.py; README, "Recovery"). A task a service enqueues is a row
# written with its change, published on commit; the relay (manage.py outbox_relay) publishes
# every OUTBOX_RELAY_INTERVAL_SECONDS what was not (broker down), unless it is younger than
# OUTBOX_PUBLISH_GRACE_SECONDS (its own commit is still publishing it). A worker holding the
# message keeps its lease OUTBOX_LEASE_SECONDS ahead; a row whose lease ran out (its worker
# died) is published again. A message no worker has taken is published again after
# OUTBOX_QUEUED_LEASE_SECONDS (a last resort: a broker restart is noticed at once). After a
# failed publish a process leaves publishing to the relay for OUTBOX_PUBLISH_PAUSE_SECONDS.
OUTBOX_RELAY_INTERVAL_SECONDS = env.float("OUTBOX_RELAY_INTERVAL_SECONDS", default=2.0)
OUTBOX_PUBLISH_GRACE_SECONDS = env.float("OUTBOX_PUBLISH_GRACE_SECONDS", default=5.0)
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=10.0)
OUTBOX_QUEUED_LEASE_SECONDS = env.float("OUTBOX_QUEUED_LEASE_SECONDS", default=600.0)
OUTBOX_PUBLISH_PAUSE_SECONDS = env.float("OUTBOX_PUBLISH_PAUSE_SECONDS", default=5.0)

# The sweepers (Celery beat), a last resort since the task outbox (below) recovers lost tasks
# within seconds: re-enqueue work that has not moved for a long time. A return's task normally
# finishes well within CELERY_TASK_TIME_LIMIT; a queued SMS may legitimately wait up to the send
# task's longest retry countdown (600 s) for a retry, so its threshold is above that.
SWEEP_INTERVAL_SECONDS = env.int("SWEEP_INTERVAL_SECONDS", default=60)
RETURN_PROCESSING_REQUEUE_AFTER_SECONDS = env.int(
    "RETURN_PROCESSING_REQUEUE_AFTER_SECONDS", default=600
)
SMS_QUEUED_REQUEUE_AFTER_SECONDS = env.int("SMS_QUEUED_REQUEUE_AFTER_SECONDS", default=720)
# SMS status reconciliation (beat): sent messages whose final status (delivered, failed) has
# not come by callback after SMS_STATUS_RECONCILE_AFTER_SECONDS are looked up at Twilio, at
# most SMS_STATUS_RECONCILE_BATCH per run, each no more often than that, for up to
# SMS_STATUS_RECONCILE_FOR_SECONDS after sending (some carriers never report delivery).
# Callbacks for SIDs no message claims are dropped after SMS_PENDING_CALLBACK_KEEP_SECONDS.
SMS_STATUS_RECONCILE_INTERVAL_SECONDS = env.int(
    "SMS_STATUS_RECONCILE_INTERVAL_SECONDS", default=300
)
SMS_STATUS_RECONCILE_AFTER_SECONDS = env.int("SMS_STATUS_RECONCILE_AFTER_SECONDS", default=900)
SMS_STATUS_RECONCILE_FOR_SECONDS = env.int(
    "SMS_STATUS_RECONCILE_FOR_SECONDS", default=3 * 24 * 3600
)
SMS_STATUS_RECONCILE_BATCH = env.int("SMS_STATUS_RECONCILE_BATCH", default=100)
SMS_PENDING_CALLBACK_KEEP_SECONDS = env.int(
    "SMS_PENDING_CALLBACK_KEEP_SECONDS", default=7 * 24 * 3600
)
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-returns": {
        "task": "returns.tasks.returns_requeue_stuck_task",
        "schedule": SWEEP_INTERVAL_SECONDS,
        # Without a worker, sweeps must not pile up in the queue: a later one does the same work.
        "options": {"expires": SWEEP_INTERVAL_SECONDS},
    },
    "requeue-stuck-sms": {
        "task": "notifications.tasks.sms_requeue_stuck_task",
        "schedule": SWEEP_INTERVAL_SECONDS,
        "options": {"expires": SWEEP_INTERVAL_SECONDS},
    },
    "reconcile-sms-status": {
        "task": "notifications.tasks.sms_status_reconcile_task",
        "schedule": SMS_STATUS_RECONCILE_INTERVAL_SECONDS,
        "options": {"expires": SMS_STATUS_RECONCILE_INTERVAL_SECONDS},
    },
    # Paper that has not come: reminders at 14 and 30 days, closed at 60 (10:00 Beijing time,
    # CELERY_TIMEZONE): a missed day is made up by the next run.
    "chase-paper": {
        "task": "returns.tasks.returns_chase_paper_task",
        "schedule": crontab(hour=10, minute=0),
        "options": {"expires": 12 * 3600},
    },
}

# SMS
SMS_BACKEND = env.str("SMS_BACKEND", default="console")
# The sender's signature, first in every SMS (notifications/texts.py): mainland carriers require
# the registered 【signature】 on messages to +86 numbers; other numbers get one in the GSM
# alphabet, so a plain English text keeps 160 characters a segment.
SMS_SIGNATURE = env.str("SMS_SIGNATURE", default="【云账单】")
SMS_SIGNATURE_INTERNATIONAL = env.str("SMS_SIGNATURE_INTERNATIONAL", default="[Cloud Billing]")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="")
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)
# Public base URL of this site, used for Twilio's status callback; empty disables the callback.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")

# The tax system, where invoices are voided and reversed (invoices.taxsystem). "manual" is the
# production default: finance works the back-office queue "To do in the tax system". "sandbox"
# simulates the e-tax platform (development and tests): it answers after
# TAX_SANDBOX_DELAY_SECONDS (0 when Celery runs eagerly) and fails on demand with
# TAX_SANDBOX_FAIL ("transient:N" or "permanent").
TAX_SYSTEM_BACKEND = env.str("TAX_SYSTEM_BACKEND", default="sandbox" if DEBUG else "manual")
TAX_SANDBOX_DELAY_SECONDS = env.float(
    "TAX_SANDBOX_DELAY_SECONDS", default=0.0 if CELERY_TASK_ALWAYS_EAGER else 5.0
)
TAX_SANDBOX_FAIL = env.str("TAX_SANDBOX_FAIL", default="")
# A return waiting on an asynchronous backend (sandbox, a provider's API) is asked about again
# when it has not moved for this long (the sweeper); the manual backend waits for finance.
TAX_POLL_REQUEUE_AFTER_SECONDS = env.int("TAX_POLL_REQUEUE_AFTER_SECONDS", default=300)

# Where customers mail returned paper invoices (shown in the Refund dialog).
RETURN_MAILING_ADDRESS = {
    "address": env.str(
        "RETURN_MAILING_ADDRESS",
        default="Finance Dept., 969 Wenyi West Road, Yuhang District, Hangzhou",
    ),
    "postal_code": env.str("RETURN_MAILING_POSTAL_CODE", default="311121"),
    "recipient": env.str("RETURN_MAILING_RECIPIENT", default="Invoice Returns Desk"),
    "phone": env.str("RETURN_MAILING_PHONE", default="+86 571 0000 0000"),
}

# Every line carries the correlation id of its request or task (core/correlation.py): one JSON
# object per line in production (LOG_FORMAT=json, the default without DEBUG), one readable line
# in development (LOG_FORMAT=plain). Celery's worker logs through this too (config/celery.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line carries the correlation id; phone numbers are masked (+86 139****9001).
    "filters": {
        "correlation": {"()": "core.logging.CorrelationIdFilter"},
        "mask_phones": {"()": "config.logfilters.PhoneMaskFilter"},
        # Celery's line per task retry and per reconnection attempt: one per minute and kind.
        "repeated_lines": {"()": "core.logging.RepeatedLinesFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="plain" if DEBUG else "json"),
            "filters": ["repeated_lines", "correlation", "mask_phones"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # At INFO the Twilio SDK logs every request: the Account SID and the recipient's number.
        "twilio": {"level": "WARNING"},
    },
}
# First, so that every later middleware and the view log under the request's id.
MIDDLEWARE.insert(0, "core.correlation.CorrelationIdMiddleware")

# No page may be framed (clickjacking); the one exception, the scan the admin's review page
# embeds, opts in to same-origin framing on its own view.
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response (django-csp): scripts only from our own static
# files (no inline script anywhere: templates and the admin load theirs from static/), nothing
# from other origins, no framing (the admin's scan view allows its own origin). Inline style
# attributes remain in a few admin templates, hence style-src 'unsafe-inline'. A view that
# sets its own policy keeps it (the customer's scan download: a sandbox).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'self'"],
        "frame-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
    LANGUAGE_COOKIE_HTTPONLY = True
    LANGUAGE_COOKIE_SAMESITE = "Lax"
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # Off by default: TLS is usually terminated by a proxy (see DJANGO_BEHIND_TLS_PROXY); turn
    # both on where this process sees HTTPS. /healthz stays reachable over plain HTTP for probes.
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=False)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
    # They only shape the HSTS header, which is sent once DJANGO_HSTS_SECONDS is set: then it
    # covers subdomains and allows preloading unless the domain cannot commit to that.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)

# The provider's own name as issuer of invoices (Cloud Market invoices name their own issuer).
PROVIDER_NAME = env.str("PROVIDER_NAME", default="Example Cloud Computing Co., Ltd.")
