"""The session engine (config/sessions.py): Django's database sessions with their read written
out. It reads what Django's db engine reads, and a session ended is ended at once."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore as DjangoDbStore
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from config.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_a_session_reads_back_what_was_saved_as_djangos_db_engine_reads_it():
    saved = SessionStore()
    saved["answer"] = {"n": 42, "text": "四十二"}
    saved.create()

    loaded = SessionStore(saved.session_key)
    assert loaded["answer"] == {"n": 42, "text": "四十二"}
    assert loaded.session_key == saved.session_key
    assert loaded._session_data_from_db() == Session.objects.get(pk=saved.session_key).session_data
    assert DjangoDbStore(saved.session_key).load() == loaded.load()


def test_an_expired_or_unknown_session_is_empty_and_gets_a_new_key():
    expired = SessionStore()
    expired["user"] = "1"
    expired.create()
    Session.objects.filter(pk=expired.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    for key in (expired.session_key, "x" * 32, None):
        store = SessionStore(key)
        assert dict(store.items()) == {}
        assert store.session_key is None


def test_a_log_out_ends_the_session_at_once(client, customer):
    client.force_login(customer.user)
    cookie = client.cookies["sessionid"].value
    assert client.get(reverse("billing:invoices")).status_code == 200

    client.post(reverse("logout"))
    client.cookies["sessionid"] = cookie  # the old cookie, replayed
    response = client.get(reverse("billing:invoices"))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_backend_reads_the_user_djangos_model_backend_reads(customer):
    from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

    from config.auth import ModelBackend

    def row(user):
        return {f.attname: getattr(user, f.attname) for f in type(user)._meta.concrete_fields}

    user = customer.user
    expected = DjangoModelBackend().get_user(str(user.pk))  # the session holds the id as str
    assert row(ModelBackend().get_user(str(user.pk))) == row(expected)
    assert ModelBackend().get_user(str(user.pk + 1000)) is None  # no such user
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert ModelBackend().get_user(str(user.pk)) is None  # as Django's: cannot authenticate


def test_a_session_logged_in_by_djangos_model_backend_stays_logged_in(client, customer):
    # Sessions from before config.auth.ModelBackend name Django's: the same user, nobody is
    # logged out by the change.
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY

    client.force_login(customer.user, backend="django.contrib.auth.backends.ModelBackend")
    stored = SessionStore(client.cookies["sessionid"].value)
    assert "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS
    assert stored[BACKEND_SESSION_KEY] == "config.auth.ModelBackend"
    response = client.get(reverse("billing:invoices"))
    assert response.status_code == 200
    assert response.wsgi_request.user == customer.user


def test_a_log_in_names_the_backend_that_reads_the_user_by_its_statement(client, customer):
    from django.contrib.auth import BACKEND_SESSION_KEY

    customer.user.set_password("a long enough password")
    customer.user.save()
    response = client.post(
        reverse("login"),
        {"username": customer.user.username, "password": "a long enough password"},
    )
    assert response.status_code == 302
    session = Session.objects.get(pk=client.cookies["sessionid"].value).get_decoded()
    assert session[BACKEND_SESSION_KEY] == "config.auth.ModelBackend"


# The session read is the request's health check (issue 16, P1 and P2) ----------------------------


def _reused_connection(monkeypatch):
    """The default connection as a web process holds it between requests: persistent, health
    checks on, and a new request just begun (Django's request_started handler has run)."""
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    connection.ensure_connection()
    connection.close_if_unusable_or_obsolete()  # what each request starts with
    assert connection.health_check_enabled
    assert not connection.health_check_done
    return connection


def _backend_pid(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_session_read_stands_in_for_the_health_check_of_a_reused_connection(monkeypatch):
    # Django pings a reused connection (SELECT 1) before the first statement of each request;
    # the session read, a request's first statement, is that check itself: one round trip less.
    saved = SessionStore()
    saved["answer"] = 42
    saved.create()
    connection = _reused_connection(monkeypatch)
    pings = []
    monkeypatch.setattr(connection, "is_usable", lambda: pings.append(1) or True)

    assert SessionStore(saved.session_key)["answer"] == 42
    assert pings == []
    assert connection.health_check_done  # no SELECT 1 for the rest of the request


@pytest.mark.django_db(transaction=True)
def test_a_connection_closed_by_the_server_is_replaced_and_the_session_still_read(monkeypatch):
    # What the health check is for: a failover, a pooler or an operator closed the connection
    # while the process kept it; the request opens a new one instead of failing.
    import psycopg
    from django.conf import settings as django_settings

    saved = SessionStore()
    saved["answer"] = 42
    saved.create()
    connection = _reused_connection(monkeypatch)
    old_pid = _backend_pid(connection)
    connection.close_if_unusable_or_obsolete()
    db = django_settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old_pid])

    assert SessionStore(saved.session_key)["answer"] == 42
    assert _backend_pid(connection) != old_pid


@pytest.mark.django_db(transaction=True)
def test_an_error_on_a_usable_connection_is_not_retried(monkeypatch):
    # Only a connection that fails Django's own check is replaced; any other error is the
    # request's, as before.
    from django.db import OperationalError

    from config import sessions

    connection = _reused_connection(monkeypatch)
    slow = "SELECT %s::text, %s::timestamptz FROM pg_sleep(1)"
    monkeypatch.setattr(sessions, "_load_sql", lambda: slow)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
    try:
        with pytest.raises(OperationalError, match="statement timeout"):
            SessionStore("a" * 32)._session_data_from_db()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
