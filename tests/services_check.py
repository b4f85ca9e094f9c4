"""Reachability checks for the real services the suite runs on."""

import os

import pytest


def require_postgres() -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.exit(
            "The suite runs on PostgreSQL: set DATABASE_URL=postgres://... (make test does).",
            returncode=4,
        )
    import psycopg

    try:
        psycopg.connect(
            host=db.get("HOST") or "127.0.0.1",
            port=int(db.get("PORT") or 5432),
            user=db.get("USER") or "postgres",
            password=db.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"PostgreSQL is not reachable at {db.get('HOST')}:{db.get('PORT')} ({exc}). "
            "Start it (e.g. `pg_ctlcluster 15 main start`) or set TEST_DATABASE_URL.",
            returncode=4,
        )


def require_redis(url: str | None = None) -> str:
    import redis

    url = url or os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable at {url} ({exc}). Start it (`redis-server --daemonize yes`) "
            "or set TEST_REDIS_URL.",
            pytrace=False,
        )
    return url
