"""Back-office pages beyond the model lists (the post room's are in ``admin_postroom``): the
words for logged paper, reviewing a red-letter form
and streaming its scan, recording the tax system's outcome of a request (and, for a digital
invoice, its red-letter confirmation form and the buyer's decision). Thin: they check
permissions, parse a form, call a service and say what happened. Reached through the model
admins' ``get_urls`` (so ``admin_view`` guards them)."""

import datetime as dt
import enum
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from core.audit.actor import Actor
from core.exceptions import DomainError
from invoices.exceptions import TaxOutcomeInvalid
from invoices.models import BuyerDecision, TaxOperation, TaxRequest, TaxRequestState
from invoices.rules import (
    tax_request_awaits_buyer,
    tax_request_awaits_confirmation_form,
    tax_request_form_has_lapsed,
    tax_request_outcome_can_be_recorded,
)
from invoices.tax import rate_as_printed
from invoices.taxsystem.interface import TaxSubmission
from invoices.taxsystem.services import local_minute, tax_submission
from invoices.workdays import business_tz
from returns.backoffice_selectors import back_office_search, customer_page
from returns.forms_admin import (
    BuyerDecisionForm,
    ConfirmationFormEntryForm,
    FormReviewForm,
    TaxOutcomeCorrectionForm,
    TaxOutcomeForm,
)
from returns.models import OPEN_STATES, RedLetterForm, ReturnRequest, ReturnState
from returns.rules import red_letter_form_can_be_reviewed
from returns.services import (
    MailReceiptOutcome,
    MailReceiptResult,
    red_letter_form_review,
    return_request_await_buyer,
    return_request_buyer_declined,
    return_request_correct_outcome,
    return_request_record_outcome,
)


class StaffRequest(HttpRequest):
    """A back-office request, for the type checker only: ``admin_site.admin_view`` lets only
    logged-in staff through, so ``user`` is a real user, never ``AnonymousUser``."""

    user: User


def mail_receipt_outcome_message(result: MailReceiptResult) -> tuple[int, str]:
    """What happened to a logged envelope, in words finance acts on."""
    rr = result.return_request
    if result.outcome == MailReceiptOutcome.DUPLICATE:
        return messages.WARNING, _(
            "Invoice %(invoice)s was already logged as received on %(date)s: nothing was saved."
        ) % {
            "invoice": result.receipt.invoice,
            "date": f"{timezone.localtime(result.receipt.received_at):%Y-%m-%d}",
        }
    if result.outcome == MailReceiptOutcome.UNMATCHED or rr is None:  # only unmatched has none
        return messages.INFO, _(
            "Invoice %(invoice)s logged unmatched: no open return waits for this paper. It "
            "waits in “Unmatched paper”, and is matched automatically if the customer submits a "
            "return."
        ) % {"invoice": result.receipt.invoice}
    if rr.state == ReturnState.REJECTED:
        return messages.WARNING, _(
            "Matched to return #%(id)s, which is held because the forms are incomplete: the "
            "return is rejected and the customer sees why (%(reason)s)."
        ) % {"id": rr.pk, "reason": rr.rejection_reason}
    if rr.state == ReturnState.RECEIVED:
        return messages.INFO, _(
            "Matched to return #%(id)s: the paper is in; the return waits for its red-letter "
            "form to be approved."
        ) % {"id": rr.pk}
    return messages.SUCCESS, _(
        "Matched to return #%(id)s: the paper is complete and the return is now being processed."
    ) % {"id": rr.pk}


def red_letter_form_review_view(
    model_admin: ModelAdmin, request: StaffRequest, form_id: int
) -> HttpResponse:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    red_letter_form = get_object_or_404(
        RedLetterForm.objects.select_related(
            "return_request__invoice__customer", "reviewer", "uploaded_by"
        ),
        pk=form_id,
    )
    can_review = request.user.has_perm("returns.review_redletterform")
    form = FormReviewForm(request.POST or None)
    if request.method == "POST":
        if not can_review:
            raise PermissionDenied
        approve = "approve" in request.POST
        if form.is_valid():
            try:
                red_letter_form_review(
                    red_letter_form_id=red_letter_form.pk,
                    reviewer=Actor.staff(request.user),
                    approve=approve,
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as exc:
                model_admin.message_user(request, str(exc), messages.ERROR)
            else:
                model_admin.log_change(
                    request, red_letter_form, _("Approved") if approve else _("Rejected")
                )
                model_admin.message_user(
                    request,
                    (_("Form %(number)s approved.") if approve else _("Form %(number)s rejected."))
                    % {"number": red_letter_form.form_number},
                    messages.SUCCESS,
                )
                return redirect(
                    reverse("admin:returns_redletterform_changelist")
                    + "?review_state__exact=pending"
                )
    rr = red_letter_form.return_request
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Review red-letter form %(number)s") % {"number": red_letter_form.form_number},
        "red_letter_form": red_letter_form,
        "return_request": rr,
        "invoice": rr.invoice,
        "form": form,
        "can_review": can_review and red_letter_form_can_be_reviewed(rr, red_letter_form),
        "scan_url": reverse("admin:returns_redletterform_scan", args=[red_letter_form.pk]),
        "opts": model_admin.model._meta,
        "original": red_letter_form,
    }
    return TemplateResponse(request, "admin/returns/redletterform/review.html", context)


# Embedded on the review page (same origin only); everything else is X-Frame-Options: DENY.
@xframe_options_sameorigin
def red_letter_form_scan_view(
    model_admin: ModelAdmin, request: HttpRequest, form_id: int
) -> FileResponse:
    """Stream a scan to staff allowed to see red-letter forms (R12): never a public URL."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    red_letter_form = get_object_or_404(RedLetterForm, pk=form_id)
    response = FileResponse(
        red_letter_form.file.open("rb"),
        content_type=red_letter_form.content_type,
        filename=f"red-letter-form-{red_letter_form.form_number}{red_letter_form.extension}",
    )
    response["X-Content-Type-Options"] = "nosniff"
    # The site's CSP forbids framing; the review page (same origin) embeds this one.
    response["Content-Security-Policy"] = "frame-ancestors 'self'"
    response["Cache-Control"] = "private, no-store"
    return response


# --- The tax-system queue (manual backend) ---------------------------------------------------

QUEUE_URL_QUERY = f"?state__exact={TaxRequestState.PENDING}"


class NextStep(enum.StrEnum):
    """What finance does next for a request, as its row and its page say (asked of the rules)."""

    RECORD_OUTCOME = "record_outcome"  # act in the tax system, then "Record outcome"
    ENTER_CONFIRMATION_FORM = "enter_confirmation_form"  # digital, booked: the form first
    AWAIT_BUYER = "await_buyer"  # digital: the buyer has 72 hours to confirm the form
    CHECK_LAPSED_FORM = "check_lapsed_form"  # digital: the 72 hours are over
    NOTHING = "nothing"  # answered: done or refused


def tax_request_next_step(tax_request: TaxRequest, *, now: dt.datetime) -> NextStep:
    if tax_request_form_has_lapsed(tax_request, now=now):
        return NextStep.CHECK_LAPSED_FORM
    if tax_request_awaits_buyer(tax_request):
        return NextStep.AWAIT_BUYER
    if tax_request_awaits_confirmation_form(tax_request):
        return NextStep.ENTER_CONFIRMATION_FORM
    if tax_request_outcome_can_be_recorded(tax_request):
        return NextStep.RECORD_OUTCOME
    return NextStep.NOTHING


@dataclass(frozen=True)
class TaxRequestFacts:
    """What finance reads, in the queue and on the record page, to act in the tax system."""

    submission: TaxSubmission  # what the tax system is asked (the backends get the same)
    requested_at: str  # Asia/Shanghai
    age: str
    form_note: SafeString  # whose red-letter form, its number, and (digital) its deadline
    next_step: NextStep
    to_do_note: str  # digital invoices: what to do on the e-tax platform, in words
    kind: str  # e.g. "Digital invoice (VAT special invoice)"
    original_number: str  # code and number; a digital invoice's number alone


def tax_request_facts(
    tax_request: TaxRequest, *, now: dt.datetime | None = None
) -> TaxRequestFacts:
    """Computed once per row (the queue shows them in several columns); no query when the
    invoice and its customer are selected with the request."""
    cached = getattr(tax_request, "_facts", None)
    if cached is None:
        now = now or timezone.now()
        submission = tax_submission(tax_request)
        requested_at = timezone.localtime(tax_request.created_at, business_tz())
        next_step = tax_request_next_step(tax_request, now=now)
        original = submission.original
        cached = TaxRequestFacts(
            submission=submission,
            requested_at=f"{requested_at:%Y-%m-%d %H:%M}",
            age=_("waiting %(age)s") % {"age": timesince(tax_request.created_at, depth=1)},
            form_note=_form_note(tax_request, submission, next_step, now=now),
            next_step=next_step,
            to_do_note=_to_do_note(tax_request, next_step) if tax_request.is_digital else "",
            kind=tax_request.invoice.kind_label,
            original_number=f"{original.code} {original.number}".strip(),
        )
        setattr(tax_request, "_facts", cached)  # noqa: B010 (a per-row cache, not a field)
    return cached


def _to_do_note(tax_request: TaxRequest, next_step: NextStep) -> str:
    """A digital reversal's next step on the e-tax platform, in words."""
    if next_step == NextStep.CHECK_LAPSED_FORM:
        return _("Deadline passed: check the platform and record the outcome.")
    if next_step == NextStep.AWAIT_BUYER:
        return _(
            "The buyer confirms the red-letter confirmation form on its e-tax platform; "
            "record the outcome when it has confirmed or refused."
        )
    if next_step == NextStep.ENTER_CONFIRMATION_FORM:
        return _(
            "Enter the red-letter confirmation form; the buyer must confirm it within 72 hours."
        )
    if next_step == NextStep.RECORD_OUTCOME and tax_request.buyer_entered_form:
        return _(
            "Confirm the red-letter confirmation form the buyer entered and issue the "
            "red-letter invoice."
        )
    if next_step == NextStep.RECORD_OUTCOME:
        return _(
            "Enter the red-letter confirmation form and issue the red-letter invoice: the "
            "buyer has not booked the invoice, so no confirmation is needed."
        )
    return ""


def confirmation_deadline(tax_request: TaxRequest, *, now: dt.datetime) -> SafeString:
    """A confirmation form's deadline in Asia/Shanghai and the time left, or that it passed
    (empty when the form awaits no buyer). For the queue, the record page and the return."""
    if tax_request.confirm_by is None:
        return SafeString("")
    deadline = _("confirm by %(deadline)s (Beijing time)") % {
        "deadline": local_minute(tax_request.confirm_by)
    }
    if not tax_request_awaits_buyer(tax_request):
        return format_html('<span class="nowrap">{}</span>', deadline)
    if tax_request_form_has_lapsed(tax_request, now=now):
        return format_html(
            '<span class="nowrap">{}</span><br><strong class="lapsed">{}</strong>',
            deadline,
            _("Deadline passed"),
        )
    left = _("%(time)s left") % {"time": timeuntil(tax_request.confirm_by, now, depth=2)}
    return format_html(
        '<span class="nowrap">{}</span><br><span class="time-left">{}</span>', deadline, left
    )


def _form_note(
    tax_request: TaxRequest, submission: TaxSubmission, next_step: NextStep, *, now: dt.datetime
) -> SafeString:
    if tax_request.is_digital:
        return _confirmation_form_note(tax_request, next_step, now=now)
    if submission.operation == TaxOperation.VOID:
        return format_html("{}", _("Not needed for a void"))
    if submission.red_letter_form_number:
        return format_html(
            '<span class="nowrap">{}</span><br><span class="quiet">{}</span>',
            submission.red_letter_form_number,
            _("filed by the buyer"),
        )
    if submission.seller_files_form:
        return format_html(
            "<strong>{}</strong><br>{}",
            _("The seller files it first."),
            _(
                "File the red-letter information form in the tax system, then enter its "
                "16-digit number with the outcome."
            ),
        )
    return format_html("{}", _("Not needed for an ordinary invoice"))


def _confirmation_form_note(
    tax_request: TaxRequest, next_step: NextStep, *, now: dt.datetime
) -> SafeString:
    """A digital reversal's red-letter confirmation form: who entered it, its number and the
    buyer's deadline, or who is to enter it."""
    number = tax_request.red_letter_form_number
    if not number:
        if next_step == NextStep.ENTER_CONFIRMATION_FORM:
            return format_html("{}", _("Not entered yet: the buyer confirms it within 72 hours"))
        return format_html("{}", _("Entered by the provider: enter its number with the outcome"))
    if tax_request.buyer_entered_form:
        who = _("entered by the buyer")
    elif tax_request.buyer_decision:
        who = tax_request.get_buyer_decision_display()
    else:
        who = _("entered by the provider")
    deadline = confirmation_deadline(tax_request, now=now)
    return format_html(
        '<span class="nowrap">{}</span><br><span class="quiet">{}</span>{}{}',
        number,
        who,
        SafeString("<br>") if deadline else "",
        deadline,
    )


def tax_outcome_message(return_request: ReturnRequest, tax_request: TaxRequest) -> str:
    red = getattr(tax_request, "red_letter_invoice", None)
    if red is not None and tax_request.is_digital:
        return _(
            "Return #%(id)s completed: digital invoice %(invoice)s reversed by red-letter "
            "invoice %(number)s (red-letter confirmation form %(form)s)."
        ) % {
            "id": return_request.pk,
            "invoice": tax_request.invoice,
            "number": red.number,
            "form": red.red_letter_form_number,
        }
    if red is not None:
        return _(
            "Return #%(id)s completed: invoice %(invoice)s reversed by red-letter invoice "
            "%(code)s %(number)s."
        ) % {
            "id": return_request.pk,
            "invoice": tax_request.invoice,
            "code": red.code,
            "number": red.number,
        }
    return _("Return #%(id)s completed: invoice %(invoice)s voided on %(date)s.") % {
        "id": return_request.pk,
        "invoice": tax_request.invoice,
        "date": f"{tax_request.voided_on:%Y-%m-%d}",
    }


def _tax_request_for_page(tax_request_id: int) -> tuple[TaxRequest, ReturnRequest | None]:
    tax_request = get_object_or_404(
        TaxRequest.objects.select_related(
            "invoice__customer", "invoice__application", "recorded_by"
        ),
        pk=tax_request_id,
    )
    return_request = ReturnRequest.objects.filter(tax_request=tax_request).order_by("-id").first()
    return tax_request, return_request


def _tax_page_context(
    model_admin: ModelAdmin,
    request: StaffRequest,
    tax_request: TaxRequest,
    return_request: ReturnRequest | None,
    facts: TaxRequestFacts,
    *,
    now: dt.datetime,
) -> dict[str, object]:
    return {
        **model_admin.admin_site.each_context(request),
        "is_nav_sidebar_enabled": False,  # as on the queue: the facts and the form side by side
        "tax_request": tax_request,
        "facts": facts,
        "original_invoice": facts.submission.original,
        "tax_rate": rate_as_printed(facts.submission.original.tax_rate),
        "invoice": tax_request.invoice,
        "return_request": return_request,
        "deadline": confirmation_deadline(tax_request, now=now),
        "queue_url": reverse("admin:invoices_taxrequest_changelist") + QUEUE_URL_QUERY,
        "opts": model_admin.model._meta,
    }


def tax_request_record_view(
    model_admin: ModelAdmin, request: StaffRequest, tax_request_id: int
) -> HttpResponse:
    """The page "Record outcome": the request's facts again, and what the tax system did.

    Guarded by ``admin_view`` (staff only) and ``invoices.record_taxrequest``. Recording goes
    through ``return_request_record_outcome``, which locks, validates and is idempotent: a
    double submit or a second clerk gets a message, never a second outcome.

    A digital invoice's red-letter confirmation form awaiting the buyer takes the buyer's
    decision instead (``BuyerDecisionForm``): confirmed, with the red-letter invoice the
    platform then issued; refused; or lapsed. A lapse is never recorded by itself with the
    manual backend, not even after the deadline: a buyer who confirms at the last minute has
    the red-letter invoice issued at once on the platform (确认即开票), so finance checks the
    platform first and records what it finds. The service refuses a lapse before the deadline.
    """
    if not request.user.has_perm("invoices.record_taxrequest"):
        raise PermissionDenied
    tax_request, return_request = _tax_request_for_page(tax_request_id)
    queue_url = reverse("admin:invoices_taxrequest_changelist") + QUEUE_URL_QUERY
    pending = tax_request_outcome_can_be_recorded(tax_request)
    if request.method == "POST" and not pending:
        # A double submit, or another clerk was quicker: say so, never record twice.
        model_admin.message_user(
            request,
            _("The outcome of request %(serial)s is already recorded: nothing was changed.")
            % {"serial": tax_request.serial},
            messages.WARNING,
        )
        return redirect(queue_url)
    now = timezone.now()
    facts = tax_request_facts(tax_request, now=now)
    step = facts.next_step
    form: TaxOutcomeForm | None = None
    if return_request is not None and step in (NextStep.AWAIT_BUYER, NextStep.CHECK_LAPSED_FORM):
        form = BuyerDecisionForm(
            request.POST or None,
            submission=facts.submission,
            lapse_offered=step == NextStep.CHECK_LAPSED_FORM,
        )
    elif return_request is not None and step == NextStep.RECORD_OUTCOME:
        form = TaxOutcomeForm(request.POST or None, submission=facts.submission)
    if request.method == "POST" and form is not None and return_request is not None:
        response = _record(model_admin, request, form, tax_request, return_request, queue_url)
        if response is not None:
            return response
    context = _tax_page_context(model_admin, request, tax_request, return_request, facts, now=now)
    context.update(
        {
            "title": _("Record outcome of request %(serial)s") % {"serial": tax_request.serial},
            "form": form,
            "buyer_decision": isinstance(form, BuyerDecisionForm),
            "confirmation_form_url": (
                reverse("admin:invoices_taxrequest_confirmation_form", args=[tax_request.pk])
                if step == NextStep.ENTER_CONFIRMATION_FORM and return_request is not None
                else ""
            ),
        }
    )
    return TemplateResponse(request, "admin/invoices/taxrequest/record.html", context)


def _record(
    model_admin: ModelAdmin,
    request: StaffRequest,
    form: TaxOutcomeForm,
    tax_request: TaxRequest,
    return_request: ReturnRequest,
    queue_url: str,
) -> HttpResponse | None:
    """Record the outcome the form holds; None (and the form's errors) when refused."""
    if not form.is_valid():
        return None
    decision = form.cleaned_data.get("decision", BuyerDecision.CONFIRMED)
    try:
        if decision == BuyerDecision.CONFIRMED:
            return_request = return_request_record_outcome(
                return_request_id=return_request.pk,
                result=form.result(),
                actor=Actor.staff(request.user),
            )
        else:
            return_request = return_request_buyer_declined(
                return_request_id=return_request.pk,
                expired=decision == BuyerDecision.EXPIRED,
                actor=Actor.staff(request.user),
            )
    except DomainError as exc:
        # Nothing saved; what was typed stays in the fields. A void's refusal is about its
        # date; a red-letter invoice's may be about any field, so it goes on top.
        voiding = tax_request.operation == TaxOperation.VOID
        field = "voided_on" if voiding and isinstance(exc, TaxOutcomeInvalid) else None
        form.add_error(field, str(exc))
        return None
    tax_request.refresh_from_db()
    if decision == BuyerDecision.CONFIRMED:
        model_admin.log_change(request, tax_request, _("Outcome recorded"))
        text = tax_outcome_message(return_request, tax_request)
    elif decision == BuyerDecision.REFUSED:
        model_admin.log_change(request, tax_request, _("Buyer's refusal recorded"))
        text = _(
            "Return #%(id)s rejected: the buyer refused red-letter confirmation form "
            "%(form)s. The invoice stays valid; the customer is told and may return it again."
        ) % {"id": return_request.pk, "form": tax_request.red_letter_form_number}
    else:
        model_admin.log_change(request, tax_request, _("Lapse recorded"))
        text = _(
            "Return #%(id)s rejected: red-letter confirmation form %(form)s lapsed "
            "unconfirmed. The invoice stays valid; the customer is told and may return it again."
        ) % {"id": return_request.pk, "form": tax_request.red_letter_form_number}
    model_admin.message_user(request, text, messages.SUCCESS)
    return redirect(queue_url)


def tax_request_confirmation_form_view(
    model_admin: ModelAdmin, request: StaffRequest, tax_request_id: int
) -> HttpResponse:
    """The page "Record the confirmation form": a booked digital invoice's red-letter
    confirmation form, entered by finance on the e-tax platform; the return then awaits the
    buyer, who has 72 hours from when the form was entered (``return_request_await_buyer``).
    Guarded like "Record outcome" (``invoices.record_taxrequest``)."""
    if not request.user.has_perm("invoices.record_taxrequest"):
        raise PermissionDenied
    tax_request, return_request = _tax_request_for_page(tax_request_id)
    queue_url = reverse("admin:invoices_taxrequest_changelist") + QUEUE_URL_QUERY
    awaited = tax_request_awaits_confirmation_form(tax_request) and return_request is not None
    if not awaited:
        # A double submit, another clerk, or a request that takes no form: nothing to do here.
        model_admin.message_user(
            request,
            _("Request %(serial)s takes no confirmation form now: nothing was changed.")
            % {"serial": tax_request.serial},
            messages.WARNING,
        )
        return redirect(reverse("admin:invoices_taxrequest_record", args=[tax_request.pk]))
    assert return_request is not None  # noqa: S101 (checked just above)
    form = ConfirmationFormEntryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            return_request = return_request_await_buyer(
                return_request_id=return_request.pk,
                form_number=form.cleaned_data["form_number"],
                entered_at=form.cleaned_data["entered_at"],
                actor=Actor.staff(request.user),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))  # nothing saved; the entry stays for correction
        else:
            tax_request.refresh_from_db()
            model_admin.log_change(request, tax_request, _("Confirmation form recorded"))
            assert tax_request.confirm_by is not None  # noqa: S101 (a database constraint)
            model_admin.message_user(
                request,
                _(
                    "Red-letter confirmation form %(form)s recorded: return #%(id)s awaits the "
                    "buyer, who must confirm it by %(deadline)s (Beijing time)."
                )
                % {
                    "form": tax_request.red_letter_form_number,
                    "id": return_request.pk,
                    "deadline": local_minute(tax_request.confirm_by),
                },
                messages.SUCCESS,
            )
            return redirect(queue_url)
    now = timezone.now()
    facts = tax_request_facts(tax_request, now=now)
    context = _tax_page_context(model_admin, request, tax_request, return_request, facts, now=now)
    context.update(
        {
            "title": _("Record the confirmation form of request %(serial)s")
            % {"serial": tax_request.serial},
            "form": form,
        }
    )
    return TemplateResponse(request, "admin/invoices/taxrequest/confirmation_form.html", context)


def tax_request_correct_view(
    model_admin: ModelAdmin, request: StaffRequest, tax_request_id: int
) -> HttpResponse:
    """An admin reviewer corrects a mistyped outcome (``invoices.correct_taxrequest``): a new
    red-letter row supersedes the old one, or the void date changes, with an audited reason.
    Never an edit in place; the ledger is untouched."""
    if not request.user.has_perm("invoices.correct_taxrequest"):
        raise PermissionDenied
    tax_request = get_object_or_404(
        TaxRequest.objects.select_related("invoice__customer"),
        pk=tax_request_id,
        state=TaxRequestState.DONE,
    )
    return_request = get_object_or_404(ReturnRequest, tax_request=tax_request)
    form = TaxOutcomeCorrectionForm(request.POST or None, tax_request=tax_request)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            return_request_correct_outcome(
                return_request_id=return_request.pk,
                actor=Actor.staff(request.user),
                reason=data["reason"],
                code=data.get("code", ""),
                number=data.get("number", ""),
                issued_on=data.get("issued_on"),
                voided_on=data.get("voided_on"),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))  # nothing saved; the entry stays for correction
        else:
            model_admin.log_change(request, tax_request, _("Outcome corrected"))
            model_admin.message_user(
                request,
                _("The outcome of request %(serial)s is corrected; the correction is audited.")
                % {"serial": tax_request.serial},
                messages.SUCCESS,
            )
            return redirect(reverse("admin:invoices_taxrequest_changelist"))
    facts = tax_request_facts(tax_request)
    context = {
        **_tax_page_context(
            model_admin, request, tax_request, return_request, facts, now=timezone.now()
        ),
        "title": _("Correct the outcome of request %(serial)s") % {"serial": tax_request.serial},
        "corrections": tax_request.corrections.select_related("corrected_by"),
        "form": form,
        "queue_url": reverse("admin:invoices_taxrequest_changelist"),
    }
    return TemplateResponse(request, "admin/invoices/taxrequest/correct.html", context)


# --- Find anything, and the customer page ------------------------------------------------------


def find_view(model_admin: ModelAdmin, request: StaffRequest) -> HttpResponse:
    """ "Find": one box for a taxpayer ID, a company name, an invoice number (paper or digital,
    or code + number), a return reference (#123), a tracking number or a mobile number."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    query = request.GET.get("q", "")[:100]
    results = back_office_search(query=query) if query.strip() else None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Find"),
        "query": query,
        "results": results,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/returns/find.html", context)


def customer_page_view(
    model_admin: ModelAdmin, request: StaffRequest, customer_id: int
) -> HttpResponse:
    """One customer: its invoices, returns, ledger with the running balance, SMS, paper logged
    with finance's notes, and the latest events of its returns."""
    if not (
        model_admin.has_view_permission(request)
        and request.user.has_perm("returns.view_returnrequest")
    ):
        raise PermissionDenied
    page = customer_page(customer_id=customer_id)
    if page is None:
        raise Http404
    context = {
        **model_admin.admin_site.each_context(request),
        "title": page.customer.name,
        "page": page,
        "now": timezone.now(),
        "open_states": list(OPEN_STATES),
        "opts": model_admin.model._meta,
        "original": page.customer,
    }
    return TemplateResponse(request, "admin/invoices/customer/page.html", context)
