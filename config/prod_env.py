"""``make prod`` checks its environment before it starts anything.

The production topology (``Procfile``: gunicorn, a Celery worker and beat, with
``DJANGO_DEBUG=false``) runs on PostgreSQL and Redis only, and production settings refuse to
start without a secret key and allowed hosts. Rather than let three processes fail one after
another (or, worse, run on the SQLite and eager-Celery defaults of development), this names
every missing or unusable setting at once, says what each should look like, and exits 2.

Settings come from the environment, then from ``.env`` (as ``config.settings`` and honcho read
them). Run as ``python -m config.prod_env [ENV_FILE]``.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}
REDIS_SCHEMES = {"redis", "rediss"}


class _FileOnly(environ.Env):
    """django-environ's own reading of an env file, into a dict instead of os.environ."""

    ENVIRON: dict[str, str] = {}


def read_env_file(path: Path) -> dict[str, str]:
    """The assignments of an env file, parsed as the settings parse it."""
    _FileOnly.ENVIRON = {}
    if path.is_file():
        _FileOnly.read_env(str(path), overwrite=True)
    return dict(_FileOnly.ENVIRON)


def problems(environment: Mapping[str, str], env_file: Mapping[str, str]) -> list[str]:
    """What keeps the production topology from starting: one line per setting."""
    merged = {**env_file, **environment}  # the process environment wins, as in the settings

    def value(name: str) -> str:
        return merged.get(name, "").strip()

    found: list[str] = []
    database = value("DATABASE_URL")
    if not database:
        found.append(
            "DATABASE_URL is not set: a PostgreSQL URL, "
            "e.g. postgres://invoice:PASSWORD@127.0.0.1:5432/invoice"
        )
    elif urlsplit(database).scheme not in POSTGRES_SCHEMES:
        found.append(
            f"DATABASE_URL must point at PostgreSQL (postgres://…), not "
            f"{urlsplit(database).scheme or database!r}: production runs on PostgreSQL only"
        )
    broker = value("CELERY_BROKER_URL")
    if not broker:
        found.append(
            "CELERY_BROKER_URL is not set: a Redis URL, e.g. redis://127.0.0.1:6379/0 "
            "(without it tasks would run inside the web process)"
        )
    elif urlsplit(broker).scheme not in REDIS_SCHEMES:
        found.append(f"CELERY_BROKER_URL must be a Redis URL (redis://…), not {broker!r}")
    if not value("DJANGO_SECRET_KEY"):
        found.append(
            "DJANGO_SECRET_KEY is not set: a long random string, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if not value("DJANGO_ALLOWED_HOSTS"):
        found.append(
            "DJANGO_ALLOWED_HOSTS is not set: the host names the site answers to, "
            "comma-separated, e.g. 127.0.0.1,localhost"
        )
    if value("SMS_BACKEND") == "twilio":
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            if not value(name):
                found.append(f"{name} is not set, and SMS_BACKEND is twilio")
        if not value("TWILIO_FROM_NUMBER") and not value("TWILIO_MESSAGING_SERVICE_SID"):
            found.append(
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID is not set, "
                "and SMS_BACKEND is twilio"
            )
    # honcho hands .env to the processes over the environment make sets: a development switch
    # there would quietly turn the production topology into the development set-up.
    debug = env_file.get("DJANGO_DEBUG", "").strip().lower()
    if debug not in ("", "false", "0", "no", "off"):
        found.append(
            f"DJANGO_DEBUG={env_file['DJANGO_DEBUG']} in the env file would override "
            "DJANGO_DEBUG=false: remove it (make run is the development set-up)"
        )
    return found


def main(argv: list[str]) -> int:
    env_file = Path(argv[1]) if len(argv) > 1 else BASE_DIR / ".env"
    found = problems(os.environ, read_env_file(env_file))
    if not found:
        return 0
    print(
        "make prod: refusing to start the production topology (web, worker, beat).\n"
        f"Set these in the environment or in {env_file}:",
        file=sys.stderr,
    )
    for line in found:
        print(f"  - {line}", file=sys.stderr)
    print("README.md, Operations, says how to run it locally.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
