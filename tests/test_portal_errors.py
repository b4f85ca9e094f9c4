"""Issue 12: error pages (400, 403, 404, 500, CSRF failure) in the portal's layout and the
visitor's language, each with a way back; money as people write it; Chinese punctuation."""

import re
from decimal import Decimal

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.test import Client, RequestFactory
from django.utils import timezone, translation

from config import views as errors
from core.audit.actor import Actor
from invoices.tax import money_as_written
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def text(response) -> str:
    page = response.content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


@pytest.mark.parametrize(
    ("headers", "title", "back", "lang"),
    [
        (EN, "Page not found", "Back to the Billing Center", 'lang="en"'),
        (ZH, "页面不存在", "返回费用中心", 'lang="zh-hans"'),
    ],
)
def test_the_404_page_is_the_portals_in_the_visitors_language_with_a_way_back(
    client, headers, title, back, lang
):
    client.force_login(CustomerFactory().user)
    response = client.get("/billing/no-such-page/", **headers)
    assert response.status_code == 404
    page = response.content.decode()
    assert lang in page
    assert f'<h1 id="error-title">{title}</h1>' in page
    assert f'<a class="btn" href="/">{back}</a>' in page
    assert 'class="sidebar"' in page  # the portal's layout, its navigation included


def test_another_customers_return_answers_the_same_404_page(client):
    from tests.factories import issue_invoice
    from tests.returns_helpers import submit

    theirs = submit(issue_invoice(CustomerFactory()))
    client.force_login(CustomerFactory().user)
    response = client.get(f"/billing/returns/{theirs.pk}/", **EN)
    assert response.status_code == 404
    assert "Page not found" in text(response)


@pytest.mark.parametrize(
    ("headers", "title", "back"),
    [
        (EN, "This form has expired", "Back to the Billing Center"),
        (ZH, "表单已过期", "返回费用中心"),
    ],
)
def test_a_csrf_failure_says_the_form_expired_in_the_visitors_language(headers, title, back):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "x", "password": "y"}, **headers)
    assert response.status_code == 403
    page = text(response)
    assert title in page
    assert back in page


@pytest.mark.parametrize(
    ("handler", "status", "en_title", "zh_title"),
    [
        (errors.bad_request, 400, "The request could not be understood", "无法处理该请求"),
        (errors.permission_denied, 403, "You may not open this page", "您无权打开此页面"),
        (errors.server_error, 500, "Something went wrong on our side", "系统出现问题"),
    ],
)
def test_400_403_and_500_pages_in_both_languages(handler, status, en_title, zh_title):
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.cache import SessionStore

    for language, title, back in (
        ("en", en_title, "Back to the Billing Center"),
        ("zh-hans", zh_title, "返回费用中心"),
    ):
        request = RequestFactory().get("/billing/invoices/")
        request.user = AnonymousUser()
        request.session = SessionStore()
        request._messages = FallbackStorage(request)
        with translation.override(language):
            response = handler(request)
        assert response.status_code == status
        page = text(response)
        assert title in page
        assert back in page


def test_the_500_page_reads_nothing_that_needs_the_database(django_assert_num_queries):
    """The user's name and the session's messages are left out: the database may be down."""
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/billing/invoices/")
    request.user = AnonymousUser()
    with django_assert_num_queries(0):
        response = errors.server_error(request)
    assert response.status_code == 500


def test_a_back_office_404_leads_back_to_the_back_office(client):
    client.force_login(UserFactory(username="finance", is_staff=True, is_superuser=True))
    response = client.get("/admin/no-such-app/", **EN)
    assert response.status_code == 404
    assert '<a class="btn" href="/admin/">Back to the back office</a>' in response.content.decode()


def test_the_error_handlers_are_wired():
    from config import urls

    assert (urls.handler400, urls.handler403, urls.handler404, urls.handler500) == (
        "config.views.bad_request",
        "config.views.permission_denied",
        "config.views.page_not_found",
        "config.views.server_error",
    )
    assert settings.CSRF_FAILURE_VIEW == "config.views.csrf_failure"


# --- Money and punctuation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("12345.67"), "¥12,345.67"),
        (Decimal("0.5"), "¥0.50"),
        (Decimal("-1000.00"), "¥-1,000.00"),
        (Decimal("1234567.005"), "¥1,234,567.01"),
        (None, ""),
    ],
)
def test_money_is_written_with_the_yuan_sign_grouped_thousands_and_two_decimals(value, written):
    assert money_as_written(value) == written


def test_the_invoice_list_writes_money_the_same_way_in_both_languages(client):
    from tests.factories import fund

    customer = CustomerFactory()
    fund(customer, "45062.75")
    client.force_login(customer.user)
    assert "¥45,062.75" in text(client.get("/billing/invoices/", **EN))
    assert "¥45,062.75" in text(client.get("/billing/invoices/", **ZH))


def test_chinese_text_uses_chinese_punctuation():
    """No ASCII colon, comma, semicolon or brackets beside Chinese characters in the catalog
    (placeholders and URLs aside)."""
    path = settings.LOCALE_PATHS[0] / "zh_Hans" / "LC_MESSAGES" / "django.po"
    with open(path, "rb") as po:
        catalog = read_po(po)
    offending = []
    for message in catalog:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            bare = re.sub(r"%\(\w+\)[sd]|https?://\S+", "", string or "")
            if re.search(r"[\u4e00-\u9fff]", bare) and re.search(r"[:,;()]", bare):
                offending.append(string)
    assert offending == []


def test_labels_on_chinese_pages_end_with_a_chinese_colon(client):
    from tests.factories import issue_invoice
    from tests.returns_helpers import submit

    customer = CustomerFactory(user__username="zh.user")
    rr = submit(issue_invoice(customer))
    client.force_login(customer.user)
    page = text(client.get(f"/billing/returns/{rr.pk}/", **ZH))
    assert "状态：" in page
    assert "邮编：" in page or "邮政编码：" in page
    assert re.search(r"[\u4e00-\u9fff]: ", page) is None


# --- A return's whole history from its invoice's row -----------------------------------------


def test_r11_an_invoices_row_keeps_its_rejected_and_cancelled_returns(client, finance_user):
    from returns.services import return_request_cancel
    from tests.factories import issue_invoice
    from tests.returns_helpers import log_paper, submit

    customer = CustomerFactory()
    invoice = issue_invoice(customer)
    cancelled = submit(invoice)
    return_request_cancel(return_request_id=cancelled.pk, actor=Actor.for_user(customer.user))
    rejected = submit(invoice)
    log_paper(invoice, finance_user, complete=False)
    open_now = submit(invoice, reason="Third time")
    client.force_login(customer.user)
    page = client.get("/billing/invoices/", **EN).content.decode()
    row = page[page.index(f'data-invoice="{invoice.pk}"') :]
    row = row[: row.index("</tr>")]
    # The open return is the Operation column's link; the row lists the two that ended.
    assert f'href="/billing/returns/{open_now.pk}/">Return in progress</a>' in row
    day = f"{timezone.localtime(rejected.created_at):%Y-%m-%d}"  # the page's time zone
    assert f'href="/billing/returns/{rejected.pk}/">{day}: Rejected</a>' in row
    assert f'href="/billing/returns/{cancelled.pk}/">{day}: Cancelled</a>' in row
    assert row.index(f"/billing/returns/{rejected.pk}/") < row.index(
        f"/billing/returns/{cancelled.pk}/"
    )  # newest first
    zh = client.get("/billing/invoices/", **ZH).content.decode()
    assert f"{day}：已驳回</a>" in zh
