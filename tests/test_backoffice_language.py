"""The back office speaks Chinese to Chinese staff (issue 11): app and model names too,
django-axes' included (it ships no Chinese catalog), and English to staff who choose it."""

import re

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def app_list(page: str) -> list[str]:
    """The app captions and model links of the admin index, as text."""
    captions = re.findall(r"<caption>\s*<a[^>]*>(.*?)</a>", page, re.S)
    models = re.findall(r'<th scope="row" id="[^"]+">\s*<a[^>]*>(.*?)</a>', page, re.S)
    return [" ".join(t.split()) for t in captions + models]


def test_every_app_and_model_name_of_the_index_is_chinese(superuser_client):
    page = superuser_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    names = app_list(page)
    assert {"发票", "退票申请", "通知", "登录保护", "登录尝试"} <= set(names)
    assert [name for name in names if not CJK.search(name)] == []


def test_staff_who_choose_english_see_english_names(superuser_client):
    page = superuser_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    names = app_list(page)
    assert {"Invoices", "Returns", "Notifications", "Log-in protection", "Number sequences"} <= set(
        names
    )


def test_axes_admin_pages_speak_chinese(superuser_client):
    from axes.models import AccessAttempt

    AccessAttempt.objects.create(
        username="someone", ip_address="10.0.0.1", user_agent="x", failures_since_start=1
    )
    page = superuser_client.get(
        "/admin/axes/accessattempt/", HTTP_ACCEPT_LANGUAGE="zh-CN"
    ).content.decode()
    assert "登录尝试" in page
    assert "IP 地址" in page
