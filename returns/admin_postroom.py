"""The post room in the back office: logging envelopes from a scanner ("Log received paper
invoice") and the unmatched paper queue. Thin: they check permissions, parse a form, ask a
selector what a scan stands for, call a service and say what happened. Reached through
``MailReceiptAdmin.get_urls`` (so ``admin_view`` guards them)."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit.actor import Actor
from core.exceptions import DomainError
from invoices.models import Invoice
from invoices.workdays import business_tz
from returns.admin_views import StaffRequest, mail_receipt_outcome_message
from returns.forms_admin import EnvelopeLine, MailReceiptLogForm, SendBackForm, envelope_lines
from returns.models import MailReceipt, ReturnRequest
from returns.scans import scan_parse
from returns.selectors import (
    invoice_for_scan,
    mail_receipts_logged_recently,
    mail_receipts_unmatched,
    mail_receipts_unmatched_count,
    return_awaiting_paper_for_invoice,
)
from returns.services import (
    EnvelopeItem,
    MailReceiptOutcome,
    mail_envelope_log,
    mail_receipt_match,
    mail_receipt_send_back,
)

JUST_LOGGED_SESSION_KEY = "postroom_just_logged"
JUST_LOGGED_MAX = 10
# The unmatched paper queue lists its oldest this many; the page counts the rest and says so.
UNMATCHED_SHOWN = 200


@dataclass(frozen=True)
class ResolvedLine:
    """A line of the envelope on the page: what was scanned, the invoice it stands for, its
    parts, and the return waiting for its paper (None: it will wait unmatched)."""

    line: EnvelopeLine
    invoice: Invoice
    awaiting: ReturnRequest | None


def _resolve(line: EnvelopeLine) -> ResolvedLine:
    invoice = invoice_for_scan(scan=scan_parse(line.text))
    return ResolvedLine(line, invoice, return_awaiting_paper_for_invoice(invoice_id=invoice.pk))


def _can_log(request: StaffRequest) -> None:
    if not request.user.has_perm("returns.log_mailreceipt"):
        raise PermissionDenied


def mail_receipt_log_view(model_admin: ModelAdmin, request: StaffRequest) -> HttpResponse:
    """ "Log received paper invoice": one envelope per save, one or more invoices in it."""
    _can_log(request)
    posted = request.method == "POST"
    form = MailReceiptLogForm(request.POST if posted else None)
    lines = envelope_lines(request.POST.getlist("envelope")) if posted else []
    resolved: list[ResolvedLine] = []
    envelope_errors: list[str] = []
    for line in lines:
        try:
            resolved.append(_resolve(line))
        except DomainError as exc:  # e.g. the invoice changed meanwhile: say so, keep the rest
            envelope_errors.append(f"{line.text}: {exc}")
    if posted and "remove" in request.POST:
        index = request.POST.get("remove", "")
        if index.isdigit() and int(index) < len(resolved):
            del resolved[int(index)]
        return _render_log(model_admin, request, _fresh(form), resolved, envelope_errors)
    if posted and form.is_valid():
        data = form.cleaned_data
        scan = data["code_and_number"]
        current: ResolvedLine | None = None
        if scan is not None:
            line = EnvelopeLine(
                scan.text,
                data["invoice_form_present"],
                data["deduction_form_present"],
                data["undamaged"],
            )
            try:
                current = _resolve(line)
            except DomainError as exc:
                form.add_error("code_and_number", str(exc))
        if current is not None and any(r.invoice.pk == current.invoice.pk for r in resolved):
            form.add_error(
                "code_and_number",
                _("Invoice %(invoice)s is already in this envelope.")
                % {"invoice": current.invoice},
            )
            current = None
        if "add" in request.POST and not form.errors:
            if current is None:
                form.add_error("code_and_number", _("Scan the next invoice of this envelope."))
            else:
                resolved.append(current)
                return _render_log(model_admin, request, _fresh(form), resolved, envelope_errors)
        elif current is not None and not current.line.any_part_present:
            form.ask_for_parts()
        elif not form.errors and not envelope_errors:
            items = resolved + ([current] if current is not None else [])
            if not items:
                form.add_error(
                    "code_and_number",
                    _(
                        "Scan the return slip or the invoice's QR code, or type the invoice "
                        "code and number."
                    ),
                )
            else:
                response = _save_envelope(model_admin, request, form, items)
                if response is not None:
                    return response
    return _render_log(model_admin, request, form, resolved, envelope_errors)


def _fresh(form: MailReceiptLogForm) -> MailReceiptLogForm:
    """The form for the next scan of the same envelope: the scan field and the parts empty,
    the envelope's courier, tracking number, time and notes kept."""
    initial = {name: form.data.get(name, "") for name in form.ENVELOPE_FIELDS}
    return MailReceiptLogForm(initial={k: v for k, v in initial.items() if v})


def _save_envelope(
    model_admin: ModelAdmin,
    request: StaffRequest,
    form: MailReceiptLogForm,
    items: list[ResolvedLine],
) -> HttpResponse | None:
    data = form.cleaned_data
    try:
        results = mail_envelope_log(
            items=[
                EnvelopeItem(
                    item.invoice.pk,
                    item.line.invoice_form_present,
                    item.line.deduction_form_present,
                    item.line.undamaged,
                )
                for item in items
            ],
            actor=Actor.staff(request.user),
            received_at=data["received_at"],
            courier=data["courier"],
            tracking_number=data["tracking_number"],
            notes=data["notes"],
        )
    except DomainError as exc:
        form.add_error("code_and_number", str(exc))  # nothing saved: the envelope stays
        return None
    logged = []
    for result in results:
        if result.outcome != MailReceiptOutcome.DUPLICATE:
            model_admin.log_addition(request, result.receipt, [{"added": {}}])
            logged.append(result.receipt.pk)
        level, text = mail_receipt_outcome_message(result)
        model_admin.message_user(request, text, level)
    recent = [*logged, *request.session.get(JUST_LOGGED_SESSION_KEY, [])]
    request.session[JUST_LOGGED_SESSION_KEY] = recent[:JUST_LOGGED_MAX]
    return redirect("admin:returns_mailreceipt_log")


def _render_log(
    model_admin: ModelAdmin,
    request: StaffRequest,
    form: MailReceiptLogForm,
    envelope: list[ResolvedLine],
    envelope_errors: list[str],
) -> HttpResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Log received paper invoice"),
        "form": form,
        "envelope": envelope,
        "envelope_errors": envelope_errors,
        "just_logged": mail_receipts_logged_recently(
            receipt_ids=request.session.get(JUST_LOGGED_SESSION_KEY, [])
        ),
        "unmatched_count": mail_receipts_unmatched_count(),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/returns/mailreceipt/log.html", context)


# --- The unmatched paper queue ------------------------------------------------------------------


def mail_receipt_unmatched_view(model_admin: ModelAdmin, request: StaffRequest) -> HttpResponse:
    """ "Unmatched paper": paper no return took, oldest first, with its age in Beijing time and
    what can be done: match it to the open return of its invoice that waits for paper, or mark
    it as sent back to the customer with the courier's tracking number."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    rows = [
        {
            "receipt": receipt,
            "received_local": timezone.localtime(receipt.received_at, business_tz()),
            "days": (now - receipt.received_at).days,
            "form": SendBackForm(prefix=f"r{receipt.pk}"),
        }
        for receipt in mail_receipts_unmatched()[:UNMATCHED_SHOWN]
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Unmatched paper"),
        "rows": rows,
        # Counted only when the page is full: the paper it leaves out is said, never dropped.
        "waiting": mail_receipts_unmatched_count() if len(rows) == UNMATCHED_SHOWN else len(rows),
        "can_act": request.user.has_perm("returns.log_mailreceipt"),
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/returns/mailreceipt/unmatched.html", context)


def mail_receipt_match_view(
    model_admin: ModelAdmin, request: StaffRequest, receipt_id: int
) -> HttpResponse:
    _can_log(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return_id = request.POST.get("return_request", "")
    if not return_id.isdigit():
        model_admin.message_user(
            request, _("Choose the return to match this paper to."), messages.ERROR
        )
        return redirect("admin:returns_mailreceipt_unmatched")
    try:
        rr = mail_receipt_match(
            mail_receipt_id=receipt_id,
            return_request_id=int(return_id),
            actor=Actor.staff(request.user),
        )
    except DomainError as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
    else:
        receipt = MailReceipt.objects.get(pk=receipt_id)
        model_admin.log_change(
            request, receipt, _("Matched to return %(reference)s") % {"reference": rr.reference}
        )
        model_admin.message_user(
            request,
            _("Paper of invoice %(invoice)s matched to return %(reference)s: it is %(state)s.")
            % {
                "invoice": rr.invoice,
                "reference": rr.reference,
                "state": rr.get_state_display().lower(),
            },
            messages.SUCCESS,
        )
    return redirect("admin:returns_mailreceipt_unmatched")


def mail_receipt_send_back_view(
    model_admin: ModelAdmin, request: StaffRequest, receipt_id: int
) -> HttpResponse:
    _can_log(request)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = SendBackForm(request.POST, prefix=f"r{receipt_id}")
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                model_admin.message_user(request, str(error), messages.ERROR)
        return redirect("admin:returns_mailreceipt_unmatched")
    try:
        receipt = mail_receipt_send_back(
            mail_receipt_id=receipt_id,
            actor=Actor.staff(request.user),
            courier=form.cleaned_data["courier"],
            tracking_number=form.cleaned_data["tracking_number"],
        )
    except DomainError as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
    else:
        model_admin.log_change(request, receipt, _("Sent back to the customer"))
        model_admin.message_user(
            request,
            _(
                "Paper of invoice %(invoice)s marked as sent back to %(customer)s "
                "(tracking %(tracking)s)."
            )
            % {
                "invoice": receipt.invoice,
                "customer": receipt.invoice.customer.name,
                "tracking": receipt.sent_back_tracking_number,
            },
            messages.SUCCESS,
        )
    return redirect("admin:returns_mailreceipt_unmatched")
