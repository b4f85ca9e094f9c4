"""Configuration guarantees of config/settings.py, checked in fresh interpreters."""

import json
import subprocess
import sys
from pathlib import Path

from tests.processes import run_fresh_django

ROOT = Path(__file__).resolve().parent.parent


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    return run_fresh_django("import django; django.setup(); print('started')", env=env)


def test_production_refuses_to_start_without_a_secret_key():
    result = _load_settings(DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_secret_key():
    result = _load_settings(
        DJANGO_DEBUG="false", DJANGO_SECRET_KEY="x" * 50, DJANGO_ALLOWED_HOSTS="billing.example.com"
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_the_development_default_is_sqlite_eager_celery_and_console_sms():
    result = run_fresh_django(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.SMS_BACKEND, "
        "s.USE_TZ, s.TIME_ZONE)",
        env={"DJANGO_DEBUG": "true"},
    )
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "True",
        "console",
        "True",
        "Asia/Shanghai",
    ], result.stderr


def test_the_test_settings_change_only_the_password_hasher_and_the_upload_folder():
    """config.settings_test (what pytest runs on) may only speed things up and keep uploads out
    of the checkout: every other setting is the base module's."""
    script = (
        "import json; import config.settings as base; import config.settings_test as test; "
        "names = sorted({n for n in dir(base) + dir(test) "
        "if n.isupper() and not n.startswith('_')}); "
        "changed = [n for n in names if getattr(base, n, None) != getattr(test, n, None)]; "
        "storages = {k for k in base.STORAGES if base.STORAGES[k] != test.STORAGES[k]}; "
        "print(json.dumps([changed, sorted(storages), test.PASSWORD_HASHERS, "
        "test.STORAGES['private']['OPTIONS']['location'] == str(test.PRIVATE_MEDIA_ROOT), "
        "str(test.PRIVATE_MEDIA_ROOT).startswith(str(base.BASE_DIR))]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        ["PASSWORD_HASHERS", "PRIVATE_MEDIA_ROOT", "STORAGES"],
        ["private"],
        ["django.contrib.auth.hashers.MD5PasswordHasher"],
        True,
        False,
    ]


def _database_settings(**env: str) -> list[str]:
    result = run_fresh_django(
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'], "
        "s.CELERY_DB_REUSE_MAX)",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_production_keeps_database_connections_with_health_checks_in_web_and_workers():
    production = {"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "billing.example.com"}
    assert _database_settings(DJANGO_DEBUG="false", **production) == ["60", "True", "1000"]
    assert _database_settings(DJANGO_DEBUG="false", DATABASE_CONN_MAX_AGE="0", **production) == [
        "0",
        "True",
        "1000",
    ]
    # Development and tests close the connection after each request, as before.
    assert _database_settings(DJANGO_DEBUG="true") == ["0", "True", "1000"]


def _prepare_threshold(**env: str) -> str:
    result = run_fresh_django(
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold'))",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_hot_paths_statements_are_prepared_on_postgresql_unless_turned_off():
    # core.sql.prepared_cursor: prepared once run 5 times; off behind a pooler that drops them.
    postgres = {"DJANGO_DEBUG": "true", "DATABASE_URL": "postgres://u@127.0.0.1:5432/db"}
    assert _prepare_threshold(**postgres) == "5"
    assert _prepare_threshold(**postgres, DATABASE_PREPARED_STATEMENTS="false") == "None"
    sqlite = {"DJANGO_DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}
    assert _prepare_threshold(**sqlite) == "None"


def test_sessions_are_database_sessions_in_production_and_development():
    # Database-backed (config.sessions: Django's db engine with its read written out): a
    # log-out or clearsessions ends a session at once, which signed cookies could not, and no
    # per-process cache can keep a session another process ended.
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "from django.contrib.sessions.backends.db import SessionStore as Db; "
        "from importlib import import_module; "
        "store = import_module(s.SESSION_ENGINE).SessionStore; "
        "print(s.SESSION_ENGINE, issubclass(store, Db), 'cache' in s.SESSION_ENGINE)"
    )
    production = {"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "billing.example.com"}
    for env in ({"DJANGO_DEBUG": "false", **production}, {"DJANGO_DEBUG": "true"}):
        result = run_fresh_django(code, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[-3:] == ["config.sessions", "True", "False"]
