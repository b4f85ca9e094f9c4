"""After logging in at /accounts/login/, each audience lands where it works."""

import pytest

from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def log_in(client, username):
    return client.post(
        "/accounts/login/", {"username": username, "password": "pw-for-tests-1"}, follow=True
    )


def test_a_customer_lands_on_invoice_management(client):
    CustomerFactory(user__username="clerk")
    response = log_in(client, "clerk")
    assert response.redirect_chain[-1][0] == "/billing/invoices/"
    assert response.status_code == 200


def test_finance_staff_land_in_the_back_office_not_on_a_404(client):
    UserFactory(username="wang.fin", is_staff=True, is_superuser=True)
    response = log_in(client, "wang.fin")
    assert response.redirect_chain[-1][0] == "/admin/"
    assert response.status_code == 200


def test_a_next_parameter_still_wins(client):
    CustomerFactory(user__username="clerk")
    response = client.post(
        "/accounts/login/?next=/billing/invoices/apply/",
        {"username": "clerk", "password": "pw-for-tests-1", "next": "/billing/invoices/apply/"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/billing/invoices/apply/"
