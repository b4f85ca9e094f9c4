"""The session's user is read by a statement written out once (``config.auth.ModelBackend``;
issue 16, P1 and P2), and Django's own checks still decide whether it is kept: a changed
password, an inactive or deleted user, a missing hash log out; an old secret key rotates."""

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PAGE = "/billing/invoices/"


def test_a_logged_in_customer_is_read_by_the_written_out_statement(client, customer, monkeypatch):
    client.force_login(customer.user)

    def orm_read(self, user_id):
        raise AssertionError("the ORM's read of the user")

    monkeypatch.setattr(ModelBackend, "get_user", orm_read)
    response = client.get(PAGE)
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert user.pk == customer.user.pk
    assert user.username == customer.user.username
    assert user.is_authenticated
    assert response.wsgi_request._cached_user.__class__ is type(customer.user)


def test_a_changed_password_ends_the_session(client, customer):
    client.force_login(customer.user)
    customer.user.set_password("another-password-1")
    customer.user.save()
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_inactive_user_is_logged_out(client, customer):
    client.force_login(customer.user)
    customer.user.is_active = False
    customer.user.save(update_fields=["is_active"])
    assert client.get(PAGE).status_code == 302


def test_a_deleted_user_is_anonymous(client):
    user = UserFactory()
    client.force_login(user)
    user.delete()
    assert client.get(PAGE).status_code == 302


def test_a_session_without_its_hash_is_ended(client, customer):
    client.force_login(customer.user)
    session = SessionStore(client.cookies["sessionid"].value)
    del session[HASH_SESSION_KEY]
    session.save()
    assert client.get(PAGE).status_code == 302


def test_a_session_signed_with_a_fallback_key_is_kept_and_rotated_as_django_does(
    client, customer, settings
):
    old_key = settings.SECRET_KEY
    client.force_login(customer.user)
    before = client.cookies["sessionid"].value
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old_key]
    response = client.get(PAGE)
    assert response.status_code == 200
    assert client.cookies["sessionid"].value != before
