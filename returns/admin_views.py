"""Back-office pages beyond the model lists: logging received paper, reviewing a red-letter form
and streaming its scan, recording the tax system's outcome of a request. Thin: they check
permissions, parse a form, call a service and say what happened. Reached through the model
admins' ``get_urls`` (so ``admin_view`` guards them)."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from core.exceptions import DomainError
from invoices.exceptions import TaxOutcomeInvalid
from invoices.models import TaxOperation, TaxRequest, TaxRequestState
from invoices.rules import tax_request_outcome_can_be_recorded
from invoices.tax import rate_as_printed
from invoices.taxsystem.interface import TaxSubmission
from invoices.taxsystem.services import tax_submission
from invoices.workdays import business_tz
from returns.forms_admin import (
    FormReviewForm,
    MailReceiptLogForm,
    TaxOutcomeCorrectionForm,
    TaxOutcomeForm,
)
from returns.models import RedLetterForm, ReturnRequest, ReturnState
from returns.rules import red_letter_form_can_be_reviewed
from returns.services import (
    MailReceiptOutcome,
    MailReceiptResult,
    mail_receipt_log,
    red_letter_form_review,
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
            "Invoice %(invoice)s logged unmatched: the customer has not submitted a return "
            "online yet. It is matched automatically when they do."
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


def mail_receipt_log_view(model_admin: ModelAdmin, request: StaffRequest) -> HttpResponse:
    if not request.user.has_perm("returns.log_mailreceipt"):
        raise PermissionDenied
    form = MailReceiptLogForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code, number = form.cleaned_data["code_and_number"]
        data = form.cleaned_data
        try:
            result = mail_receipt_log(
                invoice_code=code,
                invoice_number=number,
                actor=request.user,
                received_at=data["received_at"],
                courier=data["courier"],
                tracking_number=data["tracking_number"],
                invoice_form_present=data["invoice_form_present"],
                deduction_form_present=data["deduction_form_present"],
                undamaged=data["undamaged"],
                notes=data["notes"],
            )
        except DomainError as exc:
            # Nothing saved: the entry stays in the field for correction.
            form.add_error("code_and_number", str(exc))
        else:
            if result.outcome != MailReceiptOutcome.DUPLICATE:
                model_admin.log_addition(request, result.receipt, [{"added": {}}])
            level, text = mail_receipt_outcome_message(result)
            model_admin.message_user(request, text, level)
            return redirect("admin:returns_mailreceipt_log")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Log received paper invoice"),
        "form": form,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/returns/mailreceipt/log.html", context)


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
                    reviewer=request.user,
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


@dataclass(frozen=True)
class TaxRequestFacts:
    """What finance reads, in the queue and on the record page, to act in the tax system."""

    submission: TaxSubmission  # what the tax system is asked (the backends get the same)
    requested_at: str  # Asia/Shanghai
    age: str
    form_note: SafeString  # whose red-letter information form, and its number


def tax_request_facts(tax_request: TaxRequest) -> TaxRequestFacts:
    """Computed once per row (the queue shows them in several columns); no query when the
    invoice and its customer are selected with the request."""
    cached = getattr(tax_request, "_facts", None)
    if cached is None:
        submission = tax_submission(tax_request)
        requested_at = timezone.localtime(tax_request.created_at, business_tz())
        cached = TaxRequestFacts(
            submission=submission,
            requested_at=f"{requested_at:%Y-%m-%d %H:%M}",
            age=_("waiting %(age)s") % {"age": timesince(tax_request.created_at, depth=1)},
            form_note=_form_note(submission),
        )
        setattr(tax_request, "_facts", cached)  # noqa: B010 (a per-row cache, not a field)
    return cached


def _form_note(submission: TaxSubmission) -> SafeString:
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


def tax_outcome_message(return_request: ReturnRequest, tax_request: TaxRequest) -> str:
    red = getattr(tax_request, "red_letter_invoice", None)
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


def tax_request_record_view(
    model_admin: ModelAdmin, request: StaffRequest, tax_request_id: int
) -> HttpResponse:
    """The page "Record outcome": the request's facts again, and what the tax system did.

    Guarded by ``admin_view`` (staff only) and ``invoices.record_taxrequest``. Recording goes
    through ``return_request_record_outcome``, which locks, validates and is idempotent: a
    double submit or a second clerk gets a message, never a second outcome."""
    if not request.user.has_perm("invoices.record_taxrequest"):
        raise PermissionDenied
    tax_request = get_object_or_404(
        TaxRequest.objects.select_related(
            "invoice__customer", "invoice__application", "recorded_by"
        ),
        pk=tax_request_id,
    )
    return_request = ReturnRequest.objects.filter(tax_request=tax_request).order_by("-id").first()
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
    facts = tax_request_facts(tax_request)
    form = None
    if pending and return_request is not None:
        form = TaxOutcomeForm(request.POST or None, submission=facts.submission)
    if (
        request.method == "POST"
        and form is not None
        and return_request is not None
        and form.is_valid()
    ):
        try:
            return_request = return_request_record_outcome(
                return_request_id=return_request.pk, result=form.result(), actor=request.user
            )
        except DomainError as exc:
            # Nothing saved; what was typed stays in the fields. A void's refusal is about its
            # date; a red-letter invoice's may be about any field, so it goes on top.
            voiding = tax_request.operation == TaxOperation.VOID
            field = "voided_on" if voiding and isinstance(exc, TaxOutcomeInvalid) else None
            form.add_error(field, str(exc))
        else:
            tax_request.refresh_from_db()
            model_admin.log_change(request, tax_request, _("Outcome recorded"))
            model_admin.message_user(
                request, tax_outcome_message(return_request, tax_request), messages.SUCCESS
            )
            return redirect(queue_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "is_nav_sidebar_enabled": False,  # as on the queue: the facts and the form side by side
        "title": _("Record outcome of request %(serial)s") % {"serial": tax_request.serial},
        "tax_request": tax_request,
        "facts": facts,
        "original_invoice": facts.submission.original,
        "tax_rate": rate_as_printed(facts.submission.original.tax_rate),
        "invoice": tax_request.invoice,
        "return_request": return_request,
        "form": form,
        "queue_url": queue_url,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/invoices/taxrequest/record.html", context)


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
                actor=request.user,
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
        **model_admin.admin_site.each_context(request),
        "is_nav_sidebar_enabled": False,
        "title": _("Correct the outcome of request %(serial)s") % {"serial": tax_request.serial},
        "tax_request": tax_request,
        "facts": facts,
        "original_invoice": facts.submission.original,
        "tax_rate": rate_as_printed(facts.submission.original.tax_rate),
        "invoice": tax_request.invoice,
        "return_request": return_request,
        "corrections": tax_request.corrections.select_related("corrected_by"),
        "form": form,
        "queue_url": reverse("admin:invoices_taxrequest_changelist"),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/invoices/taxrequest/correct.html", context)
