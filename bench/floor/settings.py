"""The floor for P1 and P2: a bare Django project, in the same gunicorn configuration as the app.

No apps, no middleware, no templates: views doing the refund's transaction (P1) and Invoice
Management's reads (P2) in raw SQL on the app's own database (``bench/floor/views.py``). What
the app adds on top of this (sessions, authentication, CSRF, forms, the ORM, templates, the
rules) is what P1 and P2 weigh. Persistent connections with health checks, as the app's
production settings.
"""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.floor.urls"
USE_TZ = True
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["FLOOR_DB_NAME"],
        "USER": os.environ.get("FLOOR_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("FLOOR_DB_PASSWORD", ""),
        "HOST": os.environ.get("FLOOR_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("FLOOR_DB_PORT", "5432"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}
