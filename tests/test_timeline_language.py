"""Texts are worded in the reader's language when read (issue 12): the timeline stores message
keys and parameters, not sentences. A customer who wrote in Chinese switches the page to
English after the event and the timeline follows, and back; what a person typed stays as
typed; rows from before the keys show the text they were stored with."""

import importlib

import pytest
from django.apps import apps
from django.utils import translation

from core.audit.actor import Actor
from returns.models import ReturnEvent, ReturnRequest, ReturnState
from returns.services import return_request_cancel, return_request_reject
from tests.factories import UserFactory, issue_invoice
from tests.returns_helpers import log_paper, submit

pytestmark = pytest.mark.django_db

# A note worded before the message keys (in the customer's language, at write time).
LEGACY = "纸票于 2026-01-02 收到"


def switch_language(client, language: str) -> None:
    """The portal's language switch (the form in the page header)."""
    response = client.post("/i18n/setlang/", {"language": language, "next": "/billing/invoices/"})
    assert response.status_code == 302


@pytest.fixture
def chinese_customer(customer):
    customer.language = "zh-hans"
    customer.save(update_fields=["language"])
    return customer


def test_the_timeline_follows_the_page_language_after_the_event(
    client, chinese_customer, finance_user, django_capture_on_commit_callbacks
):
    invoice = issue_invoice(chinese_customer)
    rr = submit(invoice, reason="抬头写错了")
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, finance_user)  # the sandbox completes it: every system note
    rr = ReturnRequest.objects.get(pk=rr.pk)
    assert rr.state == ReturnState.COMPLETED
    voided_on = f"{rr.tax_request.voided_on:%Y-%m-%d}"
    client.force_login(chinese_customer.user)
    url = f"/billing/returns/{rr.pk}/"

    switch_language(client, "zh-hans")
    page = client.get(url).content.decode()
    assert f"已于 {voided_on} 在税务系统作废" in page
    assert f"已提交税务系统：作废（请求号 {rr.tax_request.serial}）" in page
    assert "抬头写错了" in page  # typed: as typed

    switch_language(client, "en")
    page = client.get(url).content.decode()
    assert f"Voided in the tax system on {voided_on}" in page
    assert f"Sent to the tax system: Void (request {rr.tax_request.serial})" in page
    assert "Ready to process" in page
    assert "已于" not in page
    assert "抬头写错了" in page  # typed: as typed, in any language

    switch_language(client, "zh-hans")
    page = client.get(url).content.decode()
    assert f"已于 {voided_on} 在税务系统作废" in page
    assert "Voided in the tax system" not in page


def test_a_rejection_reason_follows_the_page_language(client, chinese_customer, finance_user):
    invoice = issue_invoice(chinese_customer)
    rr = submit(invoice)
    log_paper(invoice, finance_user, complete=False)
    rr.refresh_from_db()
    assert rr.state == ReturnState.REJECTED
    # The SMS's copy stays in the customer's saved language (their phone reads one language).
    assert rr.rejection_reason == "退回的纸质发票不完整：缺少发票联。"
    client.force_login(chinese_customer.user)
    switch_language(client, "en")
    page = client.get(f"/billing/returns/{rr.pk}/").content.decode()
    assert "The returned paper is incomplete: missing the invoice form." in page
    assert "缺少发票联" not in page
    switch_language(client, "zh-hans")
    page = client.get(f"/billing/returns/{rr.pk}/").content.decode()
    assert "退回的纸质发票不完整：缺少发票联。" in page


def test_a_listed_rejection_reason_is_worded_per_reader_and_finances_text_kept(
    chinese_customer, finance_user
):
    from returns.models import RejectionReason

    invoice = issue_invoice(chinese_customer)
    rr = submit(invoice)
    reason = RejectionReason.objects.get(text_en="The paper invoice has not arrived.")
    return_request_reject(
        return_request_id=rr.pk,
        actor=Actor.staff(finance_user),
        rejection_choice_id=reason.pk,
        reason="(SF1234)",
    )
    event = rr.events.get(to_state=ReturnState.REJECTED)
    with translation.override("en"):
        assert event.text == "The paper invoice has not arrived. (SF1234)"
    with translation.override("zh-hans"):
        assert event.text == "我们尚未收到您寄回的纸质发票。 (SF1234)"


def test_the_back_office_reads_the_timeline_in_the_staff_users_language(
    client, chinese_customer, finance_user
):
    invoice = issue_invoice(chinese_customer)
    rr = submit(invoice)
    return_request_cancel(
        return_request_id=rr.pk, actor=Actor.customer(chinese_customer.user, chinese_customer.pk)
    )
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    url = f"/admin/returns/returnrequest/{rr.pk}/change/"
    assert "Cancelled by customer" in client.get(url).content.decode()
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "客户撤销" in page
    assert "Cancelled by customer" not in page


def test_an_event_from_before_the_keys_shows_the_text_it_was_stored_with(invoice):
    rr = submit(invoice)
    legacy = ReturnEvent.objects.create(
        return_request=rr,
        from_state="submitted",
        to_state="received",
        note=LEGACY,
    )
    for language in ("en", "zh-hans"):
        with translation.override(language):
            assert legacy.text == LEGACY


def test_the_migration_turns_fixed_texts_into_keys_and_keeps_the_others(invoice):
    migration = importlib.import_module("returns.migrations.0010_return_event_message_keys")
    rr = submit(invoice)
    fixed = ReturnEvent.objects.create(
        return_request=rr, from_state="submitted", to_state="cancelled", note="客户撤销"
    )
    worded = ReturnEvent.objects.create(
        return_request=rr,
        from_state="submitted",
        to_state="received",
        note=LEGACY,
    )
    staff = ReturnEvent.objects.create(
        return_request=rr,
        from_state="received",
        to_state="rejected",
        note="Torn",
        actor=UserFactory(is_staff=True),
    )
    migration.forwards(apps, None)
    fixed.refresh_from_db()
    worded.refresh_from_db()
    staff.refresh_from_db()
    assert (fixed.note_key, fixed.note) == ("return.cancelled_by_customer", "")
    with translation.override("en"):
        assert fixed.text == "Cancelled by customer"
    assert (worded.note_key, worded.note) == ("", LEGACY)
    assert (staff.actor_kind, staff.note) == ("staff", "Torn")
    submitted = rr.events.get(to_state=ReturnState.SUBMITTED)
    assert submitted.actor_kind == "customer"
