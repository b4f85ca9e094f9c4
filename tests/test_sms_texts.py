"""Every SMS the customer receives, asserted whole, in Chinese and in English (R8).

Each event is driven through the services as in production, with realistic figures (paper
invoice numbers of 8 digits, digital ones of 20, amounts like ¥12,345.67). A Chinese text goes
to a mainland number and starts with the registered 【signature】; an English one goes to a
Hong Kong number and starts with the GSM-alphabet signature, so it keeps 160 characters a
segment. Each text fits one segment where the issue says "where possible": the exceptions
(two 20-digit numbers in one Chinese text, a Chinese reason in an English text) say so.
"""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core.audit.actor import Actor
from invoices.models import InvoiceType, ReversalReason
from invoices.taxsystem.services import local_minute
from notifications.models import SmsMessage, SmsPurpose
from notifications.segments import segment_count
from notifications.texts import FREE_TEXT_MAX
from returns.models import RejectionReason, ReturnRequest, ReturnState
from returns.services import (
    red_letter_form_review,
    return_request_chase_paper,
    return_request_reject,
    return_request_simulate_buyer,
    returns_repoll_tax,
)
from tests.factories import CustomerFactory, UserFactory, issue_digital_invoice, issue_invoice
from tests.returns_helpers import MINIMAL_PDF, log_paper, submit

pytestmark = pytest.mark.django_db

MOBILE = {"zh-hans": "+8613800138000", "en": "+85261234567"}
AMOUNT = "12345.67"  # tax included: the figure the customer invoiced, and gets back
AN_EARLIER_MONTH = dt.datetime(2026, 9, 30, 8, tzinfo=dt.UTC)
LONG_REASON = (
    "The title on the returned invoice does not match the registered company name and the "
    "bank account number is missing two digits; please check your profile. "
) * 3  # about 465 characters, the kind a busy clerk pastes


@pytest.fixture(params=["zh-hans", "en"])
def lang(request):
    return request.param


@pytest.fixture
def customer(lang):
    return CustomerFactory(language=lang, mobile=MOBILE[lang])


@pytest.fixture
def staff():
    return UserFactory(is_staff=True)


def the_sms(purpose: str) -> SmsMessage:
    return SmsMessage.objects.get(purpose=purpose)


def assert_sms(purpose: str, expected: dict[str, str], lang: str, *, segments: int = 1) -> None:
    sms = the_sms(purpose)
    assert sms.body == expected[lang]
    assert sms.language == lang
    assert segment_count(sms.body) == segments, sms.body


def paper(customer, *, invoice_type=InvoiceType.SPECIAL, issued_at=AN_EARLIER_MONTH):
    return issue_invoice(customer, invoice_type=invoice_type, amount=AMOUNT, issued_at=issued_at)


def digital(customer):
    return issue_digital_invoice(customer, invoice_type=InvoiceType.SPECIAL, amount=AMOUNT)


def uncertified(invoice):
    if invoice.invoice_type == InvoiceType.SPECIAL:
        return submit(invoice, certified=False)
    return submit(invoice)


def with_form(invoice):
    return submit(
        invoice,
        certified=True,
        red_letter_form=SimpleUploadedFile("f.pdf", MINIMAL_PDF),
        red_letter_form_number="4403202612000011",
    )


def refund_digital(invoice, callbacks, *, buyer_booked: bool) -> ReturnRequest:
    with callbacks(execute=True):
        rr = submit(invoice, buyer_booked=buyer_booked, reason_code=ReversalReason.ISSUING_ERROR)
    rr.refresh_from_db()
    return rr


# --- one test per event -------------------------------------------------------------------


def test_r8_received_text(customer, lang, staff, django_capture_on_commit_callbacks):
    invoice = paper(customer)
    with_form(invoice)  # certified: the return waits for the form, so "received" is told
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, staff)
    n = invoice.number
    expected = {
        "zh-hans": f"【云账单】我们已收到您退回的纸质发票{n}。",
        "en": f"[Cloud Billing] We have received the paper invoice {n} you returned.",
    }
    assert_sms(SmsPurpose.RETURN_RECEIVED, expected, lang)


def test_r8_completed_voided_text_states_the_amount_with_its_currency(
    customer, lang, staff, django_capture_on_commit_callbacks
):
    invoice = paper(customer, invoice_type=InvoiceType.ORDINARY, issued_at=timezone.now())
    uncertified(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, staff)
    n = invoice.number
    expected = {
        "zh-hans": f"【云账单】发票{n}已作废，¥12,345.67已恢复为可开票金额，可重新申请开票。",
        "en": (
            f"[Cloud Billing] Invoice {n} is voided and ¥12,345.67 is invoiceable again. "
            "You may apply for a new invoice."
        ),
    }
    assert_sms(SmsPurpose.RETURN_COMPLETED, expected, lang)


def test_r8_completed_reversed_text_names_the_red_letter_invoice_and_the_amount(
    customer, lang, staff, django_capture_on_commit_callbacks
):
    invoice = paper(customer, invoice_type=InvoiceType.ORDINARY)
    uncertified(invoice)
    with django_capture_on_commit_callbacks(execute=True):
        log_paper(invoice, staff)
    invoice.refresh_from_db()
    n, red = invoice.number, invoice.red_letter_invoice.number
    assert (len(n), len(red)) == (8, 8)
    expected = {
        "zh-hans": (
            f"【云账单】发票{n}已红冲（红字发票{red}），¥12,345.67已恢复为可开票金额，"
            "可重新申请开票。"
        ),
        "en": (
            f"[Cloud Billing] Invoice {n} is reversed by red-letter invoice {red}; ¥12,345.67 "
            "is invoiceable again. You may reapply."
        ),
    }
    assert_sms(SmsPurpose.RETURN_COMPLETED, expected, lang)


def test_r8_completed_digital_text_with_two_20_digit_numbers(
    customer, lang, django_capture_on_commit_callbacks
):
    invoice = digital(customer)
    refund_digital(invoice, django_capture_on_commit_callbacks, buyer_booked=False)
    invoice.refresh_from_db()
    n, red = invoice.number, invoice.red_letter_invoice.number
    assert (len(n), len(red)) == (20, 20)
    expected = {
        "zh-hans": (
            f"【云账单】发票{n}已红冲（红字发票{red}），¥12,345.67已恢复为可开票金额，"
            "可重新申请开票。"
        ),
        "en": (
            f"[Cloud Billing] Invoice {n} is reversed by red-letter invoice {red}; ¥12,345.67 "
            "is invoiceable again. You may reapply."
        ),
    }
    # Two 20-digit numbers and the amount leave no room in 70 Chinese characters.
    assert_sms(SmsPurpose.RETURN_COMPLETED, expected, lang, segments=2 if lang == "zh-hans" else 1)


def test_r8_buyer_confirmation_text(customer, lang, django_capture_on_commit_callbacks):
    invoice = digital(customer)
    rr = refund_digital(invoice, django_capture_on_commit_callbacks, buyer_booked=True)
    n, form = invoice.number, rr.tax_request.red_letter_form_number
    deadline = local_minute(rr.tax_request.confirm_by)
    expected = {
        "zh-hans": f"【云账单】发票{n}：请于{deadline}前在电子税务局确认红字确认单{form}。",
        "en": (
            f"[Cloud Billing] Invoice {n}: confirm red-letter form {form} on your e-tax "
            f"platform by {deadline} Beijing time."
        ),
    }
    assert_sms(
        SmsPurpose.BUYER_CONFIRMATION, expected, lang, segments=2 if lang == "zh-hans" else 1
    )


def test_r8_buyer_refused_text(customer, lang, django_capture_on_commit_callbacks):
    invoice = digital(customer)
    rr = refund_digital(invoice, django_capture_on_commit_callbacks, buyer_booked=True)
    with django_capture_on_commit_callbacks(execute=True):
        return_request_simulate_buyer(
            return_request_id=rr.pk, customer_id=customer.pk, confirmed=False
        )
    n, form = invoice.number, rr.tax_request.red_letter_form_number
    expected = {
        "zh-hans": f"【云账单】发票{n}退票已关闭：购买方拒绝红字确认单{form}，发票仍有效。",
        "en": (
            f"[Cloud Billing] Return of invoice {n} closed: the buyer refused red-letter form "
            f"{form}. The invoice stays valid."
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


def test_r8_buyer_lapsed_text(customer, lang, django_capture_on_commit_callbacks, monkeypatch):
    invoice = digital(customer)
    rr = refund_digital(invoice, django_capture_on_commit_callbacks, buyer_booked=True)
    deadline = rr.tax_request.confirm_by
    monkeypatch.setattr(timezone, "now", lambda: deadline + dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        returns_repoll_tax(older_than=dt.timedelta(seconds=0))
    n, form = invoice.number, rr.tax_request.red_letter_form_number
    expected = {
        "zh-hans": f"【云账单】发票{n}退票已关闭：红字确认单{form}逾期未确认，发票仍有效。",
        "en": (
            f"[Cloud Billing] Return of invoice {n} closed: red-letter form {form} was not "
            "confirmed in 72 hours. The invoice stays valid."
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


TYPED = {"zh-hans": "发票抬头与公司名称不符", "en": "The title does not match your company name"}


def test_r8_rejected_text_quotes_what_finance_typed(customer, lang, staff):
    invoice = paper(customer)
    rr = uncertified(invoice)
    return_request_reject(
        return_request_id=rr.pk, actor=Actor.for_user(staff), reason=TYPED[lang] + "。"
    )
    n = invoice.number
    expected = {
        "zh-hans": (
            f"【云账单】您的发票{n}退票申请被驳回：「发票抬头与公司名称不符」。您可重新退回。"
        ),
        "en": (
            f'[Cloud Billing] Your return of invoice {n} was rejected: "The title does not '
            'match your company name". You may return it again.'
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


def listed(text_en: str) -> RejectionReason:
    return RejectionReason.objects.get(text_en=text_en)


def test_r8_rejected_text_gives_a_listed_reason_in_the_customers_language(customer, lang, staff):
    invoice = paper(customer)
    rr = uncertified(invoice)
    return_request_reject(
        return_request_id=rr.pk,
        actor=Actor.for_user(staff),
        rejection_choice_id=listed("The paper invoice has not arrived.").pk,
    )
    n = invoice.number
    expected = {
        "zh-hans": f"【云账单】您的发票{n}退票申请被驳回：我们尚未收到您寄回的纸质发票。",
        "en": (
            f"[Cloud Billing] Your return of invoice {n} was rejected: The paper invoice has "
            "not arrived."
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


def test_r8_rejected_text_gives_a_listed_reason_then_the_typed_note_quoted(customer, lang, staff):
    invoice = paper(customer)
    rr = uncertified(invoice)
    return_request_reject(
        return_request_id=rr.pk,
        actor=Actor.for_user(staff),
        rejection_choice_id=listed("The paper invoice has not arrived.").pk,
        reason={"zh-hans": "已等候三周", "en": "Waited three weeks"}[lang],
    )
    n = invoice.number
    expected = {
        "zh-hans": (
            f"【云账单】您的发票{n}退票申请被驳回：我们尚未收到您寄回的纸质发票。「已等候三周」。"
        ),
        "en": (
            f"[Cloud Billing] Your return of invoice {n} was rejected: The paper invoice has "
            'not arrived. "Waited three weeks".'
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


def test_r8_incomplete_paper_text_names_the_missing_parts(customer, lang, staff):
    invoice = paper(customer)
    uncertified(invoice)
    log_paper(invoice, staff, deduction_form_present=False, undamaged=False)
    n = invoice.number
    expected = {
        "zh-hans": (
            f"【云账单】您的发票{n}退票申请被驳回：寄回的纸质发票缺少抵扣联、完好的纸票。"
            "您可重新退回。"
        ),
        "en": (
            f"[Cloud Billing] Your return of invoice {n} was rejected: the paper is missing "
            "the deduction form, undamaged paper. You may return it again."
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


def test_r8_rejected_for_its_form_text_quotes_the_reviewer(
    customer, lang, staff, django_capture_on_commit_callbacks
):
    invoice = paper(customer)
    rr = with_form(invoice)
    log_paper(invoice, staff)  # received: waits for the form
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(staff),
        approve=False,
        reason={"zh-hans": "表上的税号有误", "en": "The taxpayer ID on the form is wrong"}[lang],
    )
    n = invoice.number
    expected = {
        "zh-hans": (
            f"【云账单】您的发票{n}退票申请被驳回：红字信息表被驳回，「表上的税号有误」。"
            "您可重新退回。"
        ),
        "en": (
            f"[Cloud Billing] Your return of invoice {n} was rejected for its red-letter form: "
            '"The taxpayer ID on the form is wrong". You may return it again.'
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


def test_r8_form_rejected_text_asks_for_a_new_upload(customer, lang, staff):
    invoice = paper(customer)
    rr = with_form(invoice)
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(staff),
        approve=False,
        reason={"zh-hans": "扫描件模糊", "en": "The scan is blurred"}[lang],
    )
    n = invoice.number
    expected = {
        "zh-hans": f"【云账单】发票{n}的红字信息表未通过审核：「扫描件模糊」。请重新上传。",
        "en": (
            f"[Cloud Billing] The red-letter form for invoice {n} was rejected: "
            '"The scan is blurred". Please upload it again.'
        ),
    }
    assert_sms(SmsPurpose.FORM_REJECTED, expected, lang)


def age(rr: ReturnRequest, days: int) -> dt.datetime:
    ReturnRequest.objects.filter(pk=rr.pk).update(
        created_at=timezone.now() - dt.timedelta(days=days, minutes=1)
    )
    return timezone.now()


def test_r8_paper_reminder_text(customer, lang):
    invoice = paper(customer)
    rr = uncertified(invoice)
    assert return_request_chase_paper(return_request_id=rr.pk, now=age(rr, 14)) == "reminded:14"
    n = invoice.number
    expected = {
        "zh-hans": (
            f"【云账单】您14天前退回的纸质发票{n}尚未收到，请尽快寄回；60天后仍未收到，退票将关闭。"
        ),
        "en": (
            f"[Cloud Billing] We have not received the paper invoice {n} you returned 14 days "
            "ago. Please mail it: the return closes after 60 days."
        ),
    }
    assert_sms(SmsPurpose.PAPER_REMINDER, expected, lang)


def test_r8_paper_overdue_text(customer, lang):
    invoice = paper(customer)
    rr = uncertified(invoice)
    assert return_request_chase_paper(return_request_id=rr.pk, now=age(rr, 60)) == "closed"
    n = invoice.number
    expected = {
        "zh-hans": f"【云账单】发票{n}退票已关闭：纸质发票60天内未寄到。您可重新退回。",
        "en": (
            f"[Cloud Billing] Return of invoice {n} closed: the paper did not arrive within "
            "60 days. You may return it again."
        ),
    }
    assert_sms(SmsPurpose.RETURN_REJECTED, expected, lang)


# --- the signature, free text, one message per event --------------------------------------


def test_r8_the_sms_row_keeps_the_template_and_its_parameters(customer, staff):
    invoice = paper(customer)
    rr = uncertified(invoice)
    return_request_reject(
        return_request_id=rr.pk, actor=Actor.for_user(staff), reason="Wrong title"
    )
    sms = the_sms(SmsPurpose.RETURN_REJECTED)
    assert (sms.template, sms.params) == (
        "return_rejected_note",
        {"number": invoice.number, "note": "Wrong title"},
    )


def test_r8_an_english_sms_to_a_mainland_number_carries_the_registered_signature(staff):
    customer = CustomerFactory(language="en", mobile="+8613900139000")
    invoice = paper(customer)
    with_form(invoice)
    log_paper(invoice, staff)
    assert the_sms(SmsPurpose.RETURN_RECEIVED).body == (
        f"【云账单】We have received the paper invoice {invoice.number} you returned."
    )


def test_r8_the_signature_is_a_setting(settings, staff):
    settings.SMS_SIGNATURE = "【示例云】"
    customer = CustomerFactory(language="zh-hans", mobile=MOBILE["zh-hans"])
    invoice = paper(customer)
    with_form(invoice)
    log_paper(invoice, staff)
    assert the_sms(SmsPurpose.RETURN_RECEIVED).body.startswith("【示例云】我们已收到")


def test_r8_a_long_typed_reason_is_shortened_and_quoted_to_fit_one_segment(customer, lang, staff):
    invoice = paper(customer)
    rr = uncertified(invoice)
    return_request_reject(return_request_id=rr.pk, actor=Actor.for_user(staff), reason=LONG_REASON)
    sms = the_sms(SmsPurpose.RETURN_REJECTED)
    assert segment_count(sms.body) == 1
    opening, closing = {"zh-hans": ("「", "...」"), "en": ('"', '..."')}[lang]
    quoted = sms.body.split(opening, 1)[1].split(closing, 1)[0]
    assert LONG_REASON.startswith(quoted)
    assert len(quoted) >= 12
    rr.refresh_from_db()
    assert rr.rejection_reason == LONG_REASON.strip()  # the portal shows the whole reason


def test_r8_a_typed_reason_longer_than_the_limit_is_cut_even_when_segments_allow_it(
    staff,
):
    customer = CustomerFactory(language="en", mobile=MOBILE["en"])
    invoice = paper(customer)
    rr = uncertified(invoice)
    reason = "扫描件" * 100  # Chinese in an English text: kept over two segments, but limited
    return_request_reject(return_request_id=rr.pk, actor=Actor.for_user(staff), reason=reason)
    body = the_sms(SmsPurpose.RETURN_REJECTED).body
    quoted = body.split('"', 1)[1].split('"', 1)[0]
    assert len(quoted) <= FREE_TEXT_MAX
    assert quoted.endswith("...")


def test_r8_an_english_sms_keeps_a_chinese_reason_whole(staff):
    customer = CustomerFactory(language="en", mobile=MOBILE["en"])
    invoice = paper(customer)
    rr = uncertified(invoice)
    return_request_reject(
        return_request_id=rr.pk,
        actor=Actor.for_user(staff),
        reason="发票抬头与营业执照上的公司名称不一致",
    )
    body = the_sms(SmsPurpose.RETURN_REJECTED).body
    assert body == (
        f"[Cloud Billing] Your return of invoice {invoice.number} was rejected: "
        '"发票抬头与营业执照上的公司名称不一致". You may return it again.'
    )
    assert segment_count(body) == 2  # the reason is worth a second segment


@pytest.mark.parametrize(
    ("lang", "reason", "phrase"),
    [
        ("zh-hans", "扫描件模糊，请重新上传。", "请重新上传"),
        ("en", "Blurred scan, please upload it again.", "upload it again"),
    ],
)
def test_r8_a_phrase_the_reviewer_already_wrote_is_not_doubled(lang, reason, phrase, staff):
    customer = CustomerFactory(language=lang, mobile=MOBILE[lang])
    invoice = paper(customer)
    rr = with_form(invoice)
    red_letter_form_review(
        red_letter_form_id=rr.red_letter_forms.get().pk,
        reviewer=Actor.for_user(staff),
        approve=False,
        reason=reason,
    )
    body = the_sms(SmsPurpose.FORM_REJECTED).body
    assert body.lower().count(phrase) == 1, body
    assert segment_count(body) == 1


def test_r8_paper_matched_again_to_a_new_return_is_told_as_received_once(
    staff, django_capture_on_commit_callbacks
):
    """The paper came for a return whose red-letter form was then rejected; the customer
    submits a new return with a new form and it takes the same paper: "received" once."""
    customer = CustomerFactory(language="zh-hans", mobile=MOBILE["zh-hans"])
    invoice = paper(customer)
    first = with_form(invoice)
    log_paper(invoice, staff)
    red_letter_form_review(
        red_letter_form_id=first.red_letter_forms.get().pk,
        reviewer=Actor.for_user(staff),
        approve=False,
        reason="表上的税号有误",
    )
    first.refresh_from_db()
    assert first.state == ReturnState.REJECTED
    second = with_form(invoice)
    second.refresh_from_db()
    assert (second.state, second.mail_receipt_id) == (ReturnState.RECEIVED, first.mail_receipt_id)
    received = SmsMessage.objects.filter(to=customer.mobile, purpose=SmsPurpose.RETURN_RECEIVED)
    assert received.count() == 1
    assert received.get().related_return_id == first.pk
    assert SmsMessage.objects.filter(to=customer.mobile).count() == 2  # received, rejected
