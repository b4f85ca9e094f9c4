"""Customer portal pages. Views parse input, call a service or selector, and render.

Every object is looked up through the logged-in customer: another customer's invoice, return
or form answers 404, exactly like one that does not exist (R12).
"""

from dataclasses import dataclass

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from core.audit.actor import Actor
from core.exceptions import DomainError
from core.private_files import private_file_download
from invoices.models import ApplicationState, InvoiceApplication, InvoiceType, NotifyBy
from invoices.rules import (
    customer_notify_channels,
    invoice_application_can_be_cancelled,
    invoice_return_refusal,
    tax_request_awaits_confirmation_form,
)
from invoices.selectors import (
    applications_pending_for_customer,
    customer_for_user,
    customer_page_header,
    invoice_profiles_for_customer,
    invoiceable_amount,
)
from invoices.services import (
    PROFILE_FIELDS,
    customer_notifications_update,
    invoice_application_cancel,
    invoice_application_create,
    invoice_application_issued_by_tax_system,
)
from invoices.tax import money_as_written
from returns.exceptions import InvoiceNotEligibleForReturn, ReturnAlreadyOpen
from returns.forms import (
    ApplyForm,
    NotificationSettingsForm,
    RedLetterFormUploadForm,
    RefundForm,
    ReturnEnvelopeForm,
    TrackingForm,
)
from returns.models import ReturnRequest
from returns.rules import (
    paper_parts_to_mail,
    red_letter_form_can_be_replaced,
    return_allows_reapplying,
    return_can_be_cancelled,
    return_is_digital,
    return_needs_red_letter_form,
    return_paper_is_awaited,
    return_problem_fields,
    return_slip_is_offered,
)
from returns.selectors import (
    INVOICE_STATUS_FILTERS,
    envelope_for_customer,
    invoice_document_for_customer,
    invoice_management_rows,
    invoice_to_refund_for_user,
    invoices_for_management,
    invoices_to_return_by_mail,
    red_letter_form_current,
    red_letter_forms_for_return,
    return_blocking_for_invoice,
    return_buyer_confirmation,
    return_events,
    return_for_customer,
    return_history_for_customer,
    return_rejection_text,
    return_tax_outcome,
    return_timeline,
    return_to_reapply_from,
)
from returns.services import (
    red_letter_form_upload,
    return_envelope_submit,
    return_request_cancel,
    return_request_simulate_buyer,
    return_request_submit,
    return_request_update_tracking,
)

PAGE_SIZE = 20


def _customer(request):
    customer = customer_for_user(user=request.user)
    if customer is None:
        raise Http404("No customer account")
    return customer


def _own_return(request, pk: int):
    rr = return_for_customer(customer=_customer(request), return_request_id=pk)
    if rr is None:
        raise Http404("No such return")
    return rr


def home(request):
    """Where a log-in lands: staff in the back office, customers on Invoice Management."""
    if request.user.is_authenticated and request.user.is_staff:
        return redirect("admin:index")
    return redirect("billing:invoices")


class _CountedPaginator(Paginator):
    """A paginator told its count (read with the customer, in the same query)."""

    def __init__(self, object_list, per_page, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count  # Paginator.count is a cached property


# The filter's options, translated when the page's cached filter (its template) is rendered.
_STATUS_CHOICES = [
    ("", gettext_lazy("All")),
    ("issued", gettext_lazy("Issued")),
    ("returning", gettext_lazy("Return in progress")),
    ("voided", gettext_lazy("Voided")),
    ("reversed", gettext_lazy("Reversed")),
]


@login_required
def invoice_management(request):
    header = customer_page_header(user=request.user)
    if header is None:
        raise Http404("No customer account")
    customer = header.customer
    status = request.GET.get("status", "")
    if status not in INVOICE_STATUS_FILTERS:
        status = ""
    invoices = invoices_for_management(customer=customer, status=status)
    # A paginator counts and slices ``ManagementInvoices``; it never iterates or sizes it.
    paginator = (
        _CountedPaginator(invoices, PAGE_SIZE, count=header.invoice_count)
        if not status
        else Paginator(invoices, PAGE_SIZE)  # type: ignore[arg-type]
    )
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "customer": customer,
        "invoiceable_amount": header.invoiceable,
        "page": page,
        "invoices": invoice_management_rows(page.object_list),
        "status": status,
        "status_choices": _STATUS_CHOICES,
        "apply_url": reverse("billing:apply"),
        "pending_applications": _with_cancel_offer(
            applications_pending_for_customer(customer=customer)
            if header.has_pending_applications
            else []
        ),
    }
    return render(request, "billing/invoice_management.html", context)


def _return_to_reapply_from(request, customer):
    """The completed return whose invoice the Apply page starts from (``?reapply=<invoice>``);
    404 for an invoice not returned, another customer's or a malformed id."""
    invoice_id = request.GET.get("reapply", "")
    if not invoice_id.isdigit():
        raise Http404("No such invoice")
    rr = return_to_reapply_from(customer=customer, invoice_id=int(invoice_id))
    if rr is None or not return_allows_reapplying(rr) or rr.invoice.application is None:
        raise Http404("No returned invoice to apply again from")
    return rr


def _with_cancel_offer(applications: list) -> list:
    """Each pending application with ``can_cancel``: whether the row offers "Cancel application"."""
    by_tax_system: dict[str, bool] = {}
    for application in applications:
        medium = application.medium
        if medium not in by_tax_system:
            by_tax_system[medium] = invoice_application_issued_by_tax_system(application)
        application.can_cancel = invoice_application_can_be_cancelled(
            application, issued_by_tax_system=by_tax_system[medium]
        )
    return applications


@login_required
@require_POST
def application_cancel(request, pk: int):
    """Cancel an application not issued yet (another customer's: 404); a second click says it
    was already cancelled."""
    customer = _customer(request)
    application = get_object_or_404(InvoiceApplication, pk=pk, customer=customer)
    if application.state == ApplicationState.CANCELLED:
        messages.info(request, _("This application was already cancelled."))
        return redirect("billing:invoices")
    try:
        invoice_application_cancel(
            application_id=application.pk,
            customer_id=customer.pk,
            actor=Actor.customer(request.user, customer.pk),
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        amount = money_as_written(application.amount)
        messages.success(
            request,
            _("Your application for %(amount)s was cancelled; %(amount)s is invoiceable again.")
            % {"amount": amount},
        )
    return redirect("billing:invoices")


def _refund_context(invoice, form) -> dict:
    return {
        "invoice": invoice,
        "form": form,
        "mailing": settings.RETURN_MAILING_ADDRESS,
    }


@login_required
def invoice_refund(request, invoice_id: int):
    """The Refund form: a page of its own, and the body of the Refund dialog (``?dialog=1``)."""
    # The user's invoice and the return that holds it, in one statement (issue 16, P1); a user
    # without a customer account gets the 404 of an invoice that is not theirs (R12).
    found = invoice_to_refund_for_user(user_id=request.user.pk, invoice_id=invoice_id)
    if found is None:
        raise Http404("No such invoice")
    invoice, blocking_return_id = found
    customer_id = invoice.customer_id
    if blocking_return_id is not None:
        messages.info(request, _("This invoice already has a return in progress."))
        return redirect("billing:return_detail", pk=blocking_return_id)
    if request.method == "POST":
        form = RefundForm(request.POST, request.FILES, invoice=invoice)
        if form.is_valid():
            try:
                rr = return_request_submit(
                    invoice_id=invoice.pk,
                    customer_id=customer_id,
                    actor=Actor.customer(request.user, customer_id),
                    **form.service_kwargs(),
                )
            except ReturnAlreadyOpen as exc:
                # A double submit or a second tab: show the return that won (R2).
                messages.info(request, str(exc))
                existing = return_blocking_for_invoice(invoice_id=invoice.pk)
                if existing is None:  # the winner was closed meanwhile: start from the list
                    return redirect("billing:invoices")
                return redirect("billing:return_detail", pk=existing.pk)
            except InvoiceNotEligibleForReturn as exc:
                messages.error(request, str(exc))
                return redirect("billing:invoices")
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(
                    request,
                    _("Your return of invoice %(number)s has been submitted.")
                    % {"number": invoice.number},
                )
                return redirect("billing:return_detail", pk=rr.pk)
    else:
        refusal = invoice_return_refusal(invoice)
        if refusal is not None:
            messages.error(request, refusal)
            return redirect("billing:invoices")
        form = RefundForm(invoice=invoice)
    in_dialog = bool(request.GET.get("dialog"))
    template = "billing/_refund_form.html" if in_dialog else "billing/refund.html"
    status = 400 if request.method == "POST" else 200
    context = _refund_context(invoice, form) | {"in_dialog": in_dialog}
    return render(request, template, context, status=status)


def _actor(request, rr) -> Actor:
    """The logged-in customer acting on their own return (``_own_return`` checked it)."""
    return Actor.customer(request.user, rr.invoice.customer_id)


@login_required
def return_detail(request, pk: int):
    return _render_detail(request, _own_return(request, pk))


def _render_detail(request, rr, *, tracking_form=None, upload_form=None, status: int = 200):
    events = list(return_events(return_request_id=rr.pk))
    current_form = red_letter_form_current(return_request_id=rr.pk)
    context = {
        "rr": rr,
        "invoice": rr.invoice,
        "history": return_history_for_customer(return_request=rr, events=events),
        "rejection_text": return_rejection_text(return_request=rr, events=events),
        "timeline": return_timeline(return_request=rr, events=events),
        "forms": list(red_letter_forms_for_return(return_request_id=rr.pk)),
        "current_form": current_form,
        "needs_form": return_needs_red_letter_form(rr),
        "is_digital": return_is_digital(rr),
        "buyer": return_buyer_confirmation(return_request=rr),
        "awaits_confirmation_form": rr.tax_request is not None
        and tax_request_awaits_confirmation_form(rr.tax_request),
        "can_cancel": return_can_be_cancelled(rr),
        "can_reapply": return_allows_reapplying(rr),
        "can_track": return_paper_is_awaited(rr),
        "can_print_slip": return_slip_is_offered(rr),
        "outcome": return_tax_outcome(return_request=rr),
        "can_change_form": red_letter_form_can_be_replaced(rr, current_form),
        "tracking_form": tracking_form
        or TrackingForm(initial={"courier": rr.courier, "tracking_number": rr.tracking_number}),
        "upload_form": upload_form or RedLetterFormUploadForm(),
        "mailing": settings.RETURN_MAILING_ADDRESS,
    }
    return render(request, "billing/return_detail.html", context, status=status)


@login_required
def returns_several(request):
    """Several paper invoices returned at once, in one envelope: one return each."""
    customer = _customer(request)
    invoices = invoices_to_return_by_mail(customer=customer)
    if request.method == "POST":
        form = ReturnEnvelopeForm(request.POST, invoices=invoices)
        if form.is_valid():
            try:
                envelope = return_envelope_submit(
                    customer_id=customer.pk,
                    actor=Actor.customer(request.user, customer.pk),
                    **form.service_kwargs(),
                )
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                count = envelope.returns.count()
                messages.success(
                    request,
                    ngettext(
                        "%(count)d invoice returned in one envelope.",
                        "%(count)d invoices returned in one envelope.",
                        count,
                    )
                    % {"count": count},
                )
                return redirect("billing:envelope_detail", pk=envelope.pk)
        status = 400
    else:
        form = ReturnEnvelopeForm(invoices=invoices)
        status = 200
    context = {
        "form": form,
        "has_special": any(invoice.invoice_type == InvoiceType.SPECIAL for invoice in invoices),
        "mailing": settings.RETURN_MAILING_ADDRESS,
    }
    return render(request, "billing/return_several.html", context, status=status)


@login_required
def envelope_detail(request, pk: int):
    """An envelope's returns, where to mail it and what goes in it (another customer's: 404)."""
    envelope = envelope_for_customer(customer=_customer(request), envelope_id=pk)
    if envelope is None:
        raise Http404("No such envelope")
    context = {"envelope": envelope, "mailing": settings.RETURN_MAILING_ADDRESS}
    return render(request, "billing/envelope_detail.html", context)


@dataclass(frozen=True)
class SlipCode:
    """One return on a slip: the return and its reference as an inline SVG QR code."""

    rr: ReturnRequest
    qr_svg: str


def _slip_code(rr: ReturnRequest) -> SlipCode:
    qr = segno.make_qr(rr.reference, error="m")
    svg = qr.svg_inline(
        scale=6,
        border=2,
        title=_("QR code of return %(reference)s") % {"reference": rr.reference},
    )
    # segno writes the SVG from the reference alone (letters, digits and a dash).
    return SlipCode(rr, mark_safe(svg.replace("<svg ", '<svg role="img" ', 1)))  # noqa: S308


@login_required
def envelope_slip(request, pk: int):
    """One slip for an envelope of several returns: each return's reference as a QR code (the
    post room scans each into the same envelope), what goes in it and the address."""
    envelope = envelope_for_customer(customer=_customer(request), envelope_id=pk)
    if envelope is None:
        raise Http404("No such envelope")
    awaited = [rr for rr in envelope.returns.all() if return_slip_is_offered(rr)]
    if not awaited:
        raise Http404("No return of this envelope waits for its paper")
    context = {
        "envelope": envelope,
        "slips": [_slip_code(rr) for rr in awaited],
        "parts": [(rr.invoice, paper_parts_to_mail(rr.invoice)) for rr in awaited],
        "mailing": settings.RETURN_MAILING_ADDRESS,
    }
    return render(request, "billing/envelope_slip.html", context)


@login_required
def return_slip(request, pk: int):
    """The return slip the customer prints and puts in the envelope: the return's reference as
    text and as a QR code (which the post room scans), what goes in the envelope (R5) and the
    address. Only the owner's (R12), and only while its paper is awaited (R4)."""
    rr = _own_return(request, pk)
    if not return_slip_is_offered(rr):
        raise Http404("No return slip for this return")
    context = {
        "rr": rr,
        "invoice": rr.invoice,
        "slip": _slip_code(rr),
        "parts": paper_parts_to_mail(rr.invoice),
        "mailing": settings.RETURN_MAILING_ADDRESS,
    }
    return render(request, "billing/return_slip.html", context)


@login_required
@require_POST
def return_cancel(request, pk: int):
    rr = _own_return(request, pk)
    try:
        return_request_cancel(return_request_id=rr.pk, actor=_actor(request, rr))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Your return has been cancelled."))
    return redirect("billing:return_detail", pk=rr.pk)


@login_required
@require_POST
def return_tracking(request, pk: int):
    rr = _own_return(request, pk)
    form = TrackingForm(request.POST)
    if form.is_valid():
        try:
            return_request_update_tracking(
                return_request_id=rr.pk, actor=_actor(request, rr), **form.cleaned_data
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The tracking number has been saved."))
            return redirect("billing:return_detail", pk=rr.pk)
    return _render_detail(request, rr, tracking_form=form, status=400)


@login_required
@require_POST
def return_form_upload(request, pk: int):
    rr = _own_return(request, pk)
    form = RedLetterFormUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            red_letter_form_upload(
                return_request_id=rr.pk,
                actor=_actor(request, rr),
                upload=form.cleaned_data["upload"],
                form_number=form.cleaned_data["form_number"],
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("The red-letter information form has been uploaded."))
            return redirect("billing:return_detail", pk=rr.pk)
    return _render_detail(request, rr, upload_form=form, status=400)


@login_required
def return_form_download(request, pk: int, form_id: int):
    """An uploaded scan, shown back to its owner only (R12): a download, never rendered from
    this origin."""
    rr = _own_return(request, pk)
    form = get_object_or_404(red_letter_forms_for_return(return_request_id=rr.pk), pk=form_id)
    return private_file_download(
        form.file,
        filename=f"red-letter-form-{form.form_number}{form.extension}",
        content_type=form.content_type,
    )


@login_required
def invoice_document_download(request, invoice_id: int):
    """A digital invoice's file (PDF or OFD), for its owner only (R12): another customer's
    invoice, or one without a file, answers 404. Served like an uploaded scan."""
    invoice = invoice_document_for_customer(customer=_customer(request), invoice_id=invoice_id)
    if invoice is None:
        raise Http404("No such invoice file")
    return private_file_download(
        invoice.document,
        filename=invoice.document_filename,
        content_type=invoice.document_content_type,
    )


@login_required
@require_POST
def return_simulate_buyer(request, pk: int):
    """Sandbox only (development, tests): the customer plays its own buyer on the simulated
    e-tax platform and confirms or refuses the red-letter confirmation form. The service
    refuses it on any other tax system, and for a return not awaiting the buyer."""
    rr = _own_return(request, pk)
    decision = request.POST.get("decision")
    if decision not in ("confirmed", "refused"):  # never a refusal by default
        return HttpResponseBadRequest("decision: confirmed or refused")
    confirmed = decision == "confirmed"
    try:
        return_request_simulate_buyer(
            return_request_id=rr.pk, customer_id=rr.invoice.customer_id, confirmed=confirmed
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Sandbox: the buyer's confirmation was simulated.")
            if confirmed
            else _("Sandbox: the buyer's refusal was simulated."),
        )
    return redirect("billing:return_detail", pk=rr.pk)


@login_required
def invoice_apply(request):
    """Apply for an invoice, up to the invoiceable amount, optionally from a saved profile."""
    customer = _customer(request)
    profiles = list(invoice_profiles_for_customer(customer=customer))
    if request.method == "POST":
        form = ApplyForm(request.POST)
        if form.is_valid():
            try:
                application = invoice_application_create(
                    customer_id=customer.pk,
                    actor=Actor.customer(request.user, customer.pk),
                    save_profile_as=(
                        form.cleaned_data["profile_name"]
                        if form.cleaned_data["save_profile"]
                        else ""
                    ),
                    **form.application_kwargs(),
                )
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(
                    request,
                    _("Your application for an invoice of %(amount)s has been submitted.")
                    % {"amount": money_as_written(application.amount)},
                )
                return redirect("billing:invoices")
        status = 400
    else:
        initial = {}
        reapply_from = None
        profile_id = request.GET.get("profile")
        if profile_id:
            profile = next((p for p in profiles if str(p.pk) == profile_id), None)
            if profile is None:
                raise Http404("No such profile")
            initial = {key: getattr(profile, key) for key in PROFILE_FIELDS}
        elif "reapply" in request.GET:
            reapply_from = _return_to_reapply_from(request, customer)
            application = reapply_from.invoice.application
            initial = {key: getattr(application, key) for key in PROFILE_FIELDS}
            initial["amount"] = f"{reapply_from.invoice.total:.2f}"
        form = ApplyForm(initial=initial)
        if reapply_from is not None:
            form.mark_wrong(
                return_problem_fields(reapply_from.problem),
                invoice_number=reapply_from.invoice.number,
            )
        status = 200
    context = {
        "reapply_from": reapply_from if request.method != "POST" else None,
        "form": form,
        "profiles": profiles,
        "selected_profile": request.GET.get("profile", ""),
        "invoiceable_amount": invoiceable_amount(customer_id=customer.pk),
    }
    return render(request, "billing/apply.html", context, status=status)


@login_required
def notification_settings(request):
    """The customer chooses how they hear about their returns (SMS, email or both)."""
    customer = _customer(request)
    channels = customer_notify_channels(customer, email_possible=True)
    current = customer.notify_by or (
        NotifyBy.BOTH if len(channels) == 2 else next(iter(channels), NotifyBy.SMS)
    )
    form = NotificationSettingsForm(
        request.POST or None,
        initial={
            "notify_by": current,
            "language": customer.language,
            "email": customer.user.email,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer_notifications_update(
                customer_id=customer.pk,
                actor=Actor.customer(request.user, customer.pk),
                **form.cleaned_data,
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, _("Your notification settings have been saved."))
            return redirect("billing:notification_settings")
    context = {
        "form": form,
        "customer": customer,
        "email_possible": settings.NOTIFICATION_EMAIL_ENABLED,
    }
    return render(
        request,
        "billing/notification_settings.html",
        context,
        status=400 if form.is_bound else 200,
    )
