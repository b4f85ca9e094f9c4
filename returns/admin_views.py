"""Back-office pages beyond the model lists: logging received paper, reviewing a red-letter form
and streaming its scan. Thin: they check permissions, parse a form, call a service and say what
happened. Reached through the model admins' ``get_urls`` (so ``admin_view`` guards them)."""

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from invoices.exceptions import DomainError
from returns.forms_admin import FormReviewForm, MailReceiptLogForm
from returns.models import RedLetterForm, ReturnState
from returns.services import (
    MailReceiptOutcome,
    MailReceiptResult,
    mail_receipt_log,
    red_letter_form_review,
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
        "can_review": can_review and red_letter_form.review_state == "pending",
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
    response["Cache-Control"] = "private, no-store"
    return response
