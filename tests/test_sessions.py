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
