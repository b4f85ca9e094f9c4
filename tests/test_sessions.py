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
    row = loaded._get_session_from_db()
    assert row.expire_date == Session.objects.get(pk=saved.session_key).expire_date
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
