"""Brute force on the log-in pages: django-axes locks per account and per address (issue 14)."""

import pytest
from axes.models import AccessAttempt
from django.utils import translation

from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"
LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


def attempt(client, page, username, password, address="10.0.0.1"):
    return client.post(page, {"username": username, "password": password}, REMOTE_ADDR=address)


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_thirty_wrong_passwords_then_the_right_one_is_refused(client, page):
    UserFactory(username="wang.fin", is_staff=True, is_superuser=True)
    for _ in range(30):
        attempt(client, page, "wang.fin", "wrong-guess")
    response = attempt(client, page, "wang.fin", PASSWORD)
    assert response.status_code == 429
    assert not is_logged_in(client)
    assert "Too many failed log-in attempts" in response.content.decode()


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_account_is_locked_from_another_address_too(client, page):
    UserFactory(username="wang.fin", is_staff=True, is_superuser=True)
    for n in range(30):
        attempt(client, page, "wang.fin", "wrong-guess", address=f"10.0.1.{n}")
    response = attempt(client, page, "wang.fin", PASSWORD, address="10.9.9.9")
    assert response.status_code == 429
    assert not is_logged_in(client)


@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_address_is_locked_for_another_account(client, page):
    CustomerFactory(user__username="clerk")
    UserFactory(username="wang.fin", is_staff=True, is_superuser=True)
    for n in range(30):
        attempt(client, page, f"guess-{n}", "wrong-guess")
    other = "clerk" if page == "/accounts/login/" else "wang.fin"
    response = attempt(client, page, other, PASSWORD)
    assert response.status_code == 429
    assert not is_logged_in(client)


def test_a_few_mistakes_do_not_lock_and_a_success_resets_the_count(client, settings):
    CustomerFactory(user__username="clerk")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, "/accounts/login/", "clerk", "typo")
    response = attempt(client, "/accounts/login/", "clerk", PASSWORD)
    assert response.status_code == 302
    assert is_logged_in(client)
    assert not AccessAttempt.objects.filter(username="clerk").exists()


def test_the_lock_out_page_speaks_chinese(client):
    UserFactory(username="clerk")
    for _ in range(30):
        attempt(client, "/accounts/login/", "clerk", "wrong-guess")
    client.cookies["django_language"] = "zh-hans"
    response = attempt(client, "/accounts/login/", "clerk", PASSWORD)
    assert response.status_code == 429
    with translation.override("zh-hans"):
        expected = translation.gettext("Log-in locked")
    assert expected != "Log-in locked"
    assert expected in response.content.decode()


def test_staff_unlock_the_account_in_the_back_office(client, admin_client):
    CustomerFactory(user__username="clerk")
    for _ in range(30):
        attempt(client, "/accounts/login/", "clerk", "wrong-guess", address="10.0.0.7")
    assert (
        attempt(client, "/accounts/login/", "clerk", PASSWORD, address="10.0.0.7").status_code
        == 429
    )

    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "clerk" in listing.content.decode()
    ids = [
        str(pk)
        for pk in AccessAttempt.objects.filter(username="clerk").values_list("pk", flat=True)
    ]
    response = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="clerk").exists()

    response = attempt(client, "/accounts/login/", "clerk", PASSWORD, address="10.0.0.7")
    assert response.status_code == 302
    assert is_logged_in(client)


def test_the_login_form_keeps_its_public_contract(client):
    page = client.get("/accounts/login/").content.decode()
    for text in ('for="id_username">Username<', 'for="id_password">Password<', ">Log in</button>"):
        assert text in page


def test_staff_sessions_are_shorter_than_customers(client, settings):
    UserFactory(username="wang.fin", is_staff=True, is_superuser=True)
    CustomerFactory(user__username="clerk")
    attempt(client, "/admin/login/", "wang.fin", PASSWORD)
    assert is_logged_in(client)
    assert client.session.get_expiry_age() == settings.STAFF_SESSION_SECONDS == 8 * 3600
    staff_cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert int(staff_cookie["max-age"]) == 8 * 3600

    client.logout()
    attempt(client, "/accounts/login/", "clerk", PASSWORD)
    assert is_logged_in(client)
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE == 14 * 24 * 3600


def test_finance_staff_unlock_a_customer_and_reviewers_cannot(client):
    """The "Unlock" action (config/admin.py) is finance's: no superuser needed at the month-end
    rush, and no delete permission either. Admin reviewers only review forms."""
    from django.test import Client

    from returns.roles import ADMIN_REVIEWERS, FINANCE_STAFF
    from tests.factories import staff_in_role

    CustomerFactory(user__username="clerk")
    for _ in range(30):
        attempt(client, "/accounts/login/", "clerk", "wrong-guess", address="10.0.0.8")
    ids = [
        str(pk)
        for pk in AccessAttempt.objects.filter(username="clerk").values_list("pk", flat=True)
    ]
    unlock = {"action": "unlock", "_selected_action": ids}

    reviewer = Client()
    reviewer.force_login(staff_in_role(ADMIN_REVIEWERS, username="rev"))
    assert reviewer.get("/admin/axes/accessattempt/").status_code == 403
    reviewer.post("/admin/axes/accessattempt/", unlock)
    assert AccessAttempt.objects.filter(username="clerk").exists()

    finance = Client()
    finance.force_login(staff_in_role(FINANCE_STAFF, username="fin"))
    listing = finance.get("/admin/axes/accessattempt/")
    assert "clerk" in listing.content.decode()
    assert 'value="unlock"' in listing.content.decode()
    assert 'value="delete_selected"' not in listing.content.decode()
    assert finance.post("/admin/axes/accessattempt/", unlock).status_code == 302
    assert not AccessAttempt.objects.filter(username="clerk").exists()
    response = attempt(client, "/accounts/login/", "clerk", PASSWORD, address="10.0.0.8")
    assert response.status_code == 302
    assert is_logged_in(client)
