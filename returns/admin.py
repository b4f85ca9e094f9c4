"""The finance back office for returns: the returns queue, mail receipts, red-letter forms and
the queue "To do in the tax system" (``TaxRequest`` is registered here, not in ``invoices``,
because recording its outcome completes the return and ``invoices`` never imports ``returns``).

Nothing here decides anything: actions and pages call the services and show their domain
errors as admin messages. Nobody deletes a return, a receipt or a form.
"""

import datetime as dt
from collections.abc import Callable
from html import escape

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import display_for_value
from django.contrib.admin.views.main import SEARCH_VAR
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import (
    ExportMixin,
    KeysFirstPaginator,
    LargeListChangeList,
    ReadOnlyAdmin,
    ReadOnlyInline,
    bulk_action_rows,
)
from core.bulk import RowResult
from invoices.admin import CustomerAdmin
from invoices.models import (
    Customer,
    ReturnOutcome,
    TaxRequest,
    TaxRequestState,
)
from invoices.rules import tax_request_is_overdue, tax_request_outcome_can_be_corrected
from invoices.tax import rate_as_printed
from returns import admin_postroom, admin_views
from returns.backoffice_selectors import RETURN_COLUMNS, return_export_rows, returns_matching
from returns.bulk import PROCESSING_AGAIN, REJECTED, RETURNS_REJECT, RETURNS_RETRY
from returns.models import (
    OPEN_STATES,
    MailReceipt,
    RedLetterForm,
    RejectionReason,
    ReturnEnvelope,
    ReturnEvent,
    ReturnRequest,
    ReturnState,
)
from returns.rules import return_is_digital
from returns.selectors import (
    tax_requests_for_queue,
    tax_requests_lapsed_first,
    tax_requests_to_do,
)


class ReturnEventInline(ReadOnlyInline):
    model = ReturnEvent
    readonly_fields = ("created_at", "actor_kind", "actor", "from_state", "to_state", "why")
    fields = readonly_fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("Timeline")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("why"))
    def why(self, event: ReturnEvent) -> str:
        return event.text  # in the staff user's language


class ReturnActionForm(helpers.ActionForm):
    """The action bar, plus the reason a rejection needs (the customer sees it): one from the
    list, in the staff user's language, and/or text of its own."""

    rejection_choice = forms.ModelChoiceField(
        queryset=RejectionReason.objects.filter(active=True),
        label=_("Rejection reason"),
        required=False,
    )
    reason = forms.CharField(label=_("Reason (for rejecting)"), required=False, max_length=500)


def age_in_days(since: dt.datetime, *, now: dt.datetime | None = None) -> int:
    """Whole days since ``since``: the age every open item shows in the back office."""
    return ((now or timezone.now()) - since).days


class ReturnsChangeList(LargeListChangeList):
    """The returns list reads each return with its invoice and customer only: the submitter
    and the tax request that the return's own page shows are not in its columns."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        if not isinstance(self.list_select_related, list | tuple):
            return queryset
        return queryset.select_related(None).select_related(*self.list_select_related)


@admin.register(ReturnRequest)
class ReturnRequestAdmin(ExportMixin, ReadOnlyAdmin):
    """The returns queue: filters, the age of each open return, reject/retry, and the filtered
    list to Excel or CSV; "Find" searches every key, the customer page shows one customer."""

    list_display = [
        "id",
        "state",
        "kind",
        "certified",
        "customer",
        "invoice_code_and_number",
        "days_waiting",
        "outcome",
        "created_at",
    ]
    list_filter = ["state", "medium", "invoice__invoice_type", "certified", "outcome"]
    # Exact or by the beginning, each through its own index (``get_search_results``); the
    # "Find" page searches every key too.
    search_fields = [
        "invoice__number__startswith",
        "invoice__code__exact",
        "invoice__customer__name__icontains",
        "invoice__customer__taxpayer_id__startswith",
        "invoice__customer__mobile__startswith",
        "tracking_number__startswith",
    ]
    list_select_related = ["invoice", "invoice__customer"]
    export_columns = RETURN_COLUMNS
    export_name = "returns"
    readonly_fields = (
        "reference",
        "invoice",
        "kind",
        "state",
        "problem",
        "reason",
        "reason_code",
        "certified",
        "courier",
        "tracking_number",
        "mail_receipt",
        "buyer_booked",
        "buyer_form_number",
        "confirmation_form",
        "outcome",
        "rejection_reason",
        "rejection_choice",
        "rejection_note",
        "error",
        "submitted_by",
        "created_at",
        "audit_log",
    )
    fields = readonly_fields
    # Asked of a paper return only / of a digital return only (数电票: no paper, no mailing).
    PAPER_ONLY = ("certified", "courier", "tracking_number", "mail_receipt")
    DIGITAL_ONLY = ("buyer_booked", "buyer_form_number", "confirmation_form")
    inlines = [ReturnEventInline]
    action_form = ReturnActionForm
    actions = ["reject", "retry"]
    list_per_page = 50
    # The page's 50 returns are chosen on the returns alone, then read with their invoice and
    # customer (a search that 2,000 returns match joins 50).
    paginator = KeysFirstPaginator
    # The rows come written out (``list_rows``), through ``{% large_result_list %}``.
    change_list_template = "admin/returns/returnrequest/change_list.html"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("invoice__customer", "submitted_by", "tax_request")
        )

    def get_changelist(self, request, **kwargs):
        return ReturnsChangeList

    def list_rows(self, cl) -> list[SafeString] | None:
        """The page's rows, each written out in one piece: the HTML Django's
        ``items_for_result`` writes for these columns (a test compares them, in both
        languages), with each column's labels, icons, links and empty value worked out once a
        page instead of once a cell (issue 16, P5: 50 rows x 10 cells were most of the page).
        ``None`` (Django writes the rows) for any other set of columns, a pop-up or a form."""
        columns = list(cl.list_display)
        if (
            cl.formset
            or cl.is_popup
            or cl.to_field
            or list(cl.list_display_links or ()) != ["id"]
            or not set(columns) <= {"action_checkbox", *self.list_display}
        ):
            return None
        results = list(cl.result_list)
        if not results:
            return []
        empty = self.get_empty_value_display()

        def text(value: str) -> str:
            return escape(value) if value.strip() else empty

        states = {value: escape(str(label)) for value, label in ReturnState.choices}
        outcomes = {value: escape(str(label)) for value, label in ReturnOutcome.choices}
        icons = {value: display_for_value(value, empty, boolean=True) for value in (True, False)}
        plain_numbers = formats.number_format(1234567) == "1234567"

        def number(value: int) -> str:
            return str(value) if plain_numbers else escape(str(formats.number_format(value)))

        def slow_url(obj: ReturnRequest) -> str:
            context = {"preserved_filters": cl.preserved_filters, "opts": cl.opts}
            return add_preserved_filters(context, cl.url_for_result(obj))

        # Every row's link is the first one's with its own id.
        marker = f"/{results[0].pk}/change/"
        head, found, tail = slow_url(results[0]).partition(marker)

        def link(obj: ReturnRequest) -> str:
            url = f"{head}/{obj.pk}/change/{tail}" if found else slow_url(obj)
            return f'<a href="{escape(url)}">{number(obj.pk)}</a>'

        def days_waiting(obj: ReturnRequest) -> str:
            days = self.days_waiting(obj)  # the column's own rule: open returns only
            return empty if days is None else number(days)

        def created_at(obj: ReturnRequest) -> str:
            return escape(formats.localize(timezone.localtime(obj.created_at)))

        contents: dict[str, Callable[[ReturnRequest], str]] = {
            "action_checkbox": self.action_checkbox,
            "id": link,
            "state": lambda obj: states.get(obj.state, empty),
            # The columns' own display methods give the values; only their writing is here.
            "kind": lambda obj: text(str(self.kind(obj))),
            "certified": lambda obj: icons[obj.certified],
            "customer": lambda obj: text(self.customer(obj)),
            "invoice_code_and_number": lambda obj: text(self.invoice_code_and_number(obj)),
            "days_waiting": days_waiting,
            "outcome": lambda obj: outcomes.get(obj.outcome, empty),
            "created_at": created_at,
        }
        # Each cell's tag and classes as Django writes them: the link's column is a <th>, a
        # date's cell does not wrap, the checkbox's cell has a class of its own.
        tags = {"id": "th"}
        classes = {"action_checkbox": "action-checkbox", "created_at": "field-created_at nowrap"}
        row = [
            (
                f'<{tags.get(name, "td")} class="{classes.get(name, f"field-{name}")}">',
                f"</{tags.get(name, 'td')}>",
                contents[name],
            )
            for name in columns
        ]
        return [
            SafeString(
                "".join(f"{opening}{content(obj)}{closing}" for opening, closing, content in row)
            )
            for obj in results
        ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        hidden = self.PAPER_ONLY if return_is_digital(obj) else self.DIGITAL_ONLY
        return [name for name in super().get_fields(request, obj) if name not in hidden]

    @admin.display(description=_("kind"), ordering="medium")
    def kind(self, obj: ReturnRequest) -> str:
        return obj.invoice.kind_label

    @admin.display(description=_("red-letter confirmation form"))
    def confirmation_form(self, obj: ReturnRequest) -> str:
        """The form the return's reversal goes through, with the buyer's deadline and the time
        left (or that it passed) while it awaits the buyer."""
        tax_request = obj.tax_request
        if tax_request is None or not tax_request.red_letter_form_number:
            return "—"
        now = timezone.now()
        deadline = admin_views.confirmation_deadline(tax_request, now=now)
        who = (
            gettext("entered by the buyer")
            if tax_request.buyer_entered_form
            else gettext("entered by the provider")
        )
        decision = tax_request.get_buyer_decision_display() if tax_request.buyer_decision else ""
        return format_html(
            "{} ({}){}{}{}{}",
            tax_request.red_letter_form_number,
            who,
            SafeString("<br>") if deadline else "",
            deadline,
            SafeString("<br>") if decision else "",
            decision,
        )

    @admin.display(description=_("audit log"))
    def audit_log(self, obj: ReturnRequest) -> str:
        """Every action on this return, its invoice, paper, tax request and SMS."""
        url = reverse("admin:audit_auditentry_changelist")
        return format_html(
            '<a href="{}?scope=return:{}">{}</a>', url, obj.pk, gettext("Every action recorded")
        )

    @admin.display(description=_("customer"), ordering="invoice__customer__name")
    def customer(self, obj: ReturnRequest) -> str:
        return obj.invoice.customer.name

    @admin.display(description=_("invoice code and number"), ordering="invoice__number")
    def invoice_code_and_number(self, obj: ReturnRequest) -> str:
        return str(obj.invoice)  # a digital invoice: its number alone

    @admin.display(description=_("days waiting"), ordering="created_at")
    def days_waiting(self, obj: ReturnRequest) -> int | None:
        """The age of an open return; a closed one waits for nothing (shown empty)."""
        return age_in_days(obj.created_at) if obj.state in OPEN_STATES else None

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # A search's matches are worked out in the query (an array of ids): their keys are read
        # once for the count and the page, not worked out for each.
        searched = bool(request.GET.get(SEARCH_VAR, "").strip())
        return KeysFirstPaginator(
            queryset, per_page, orphans, allow_empty_first_page, keys_once=searched
        )

    def get_search_results(self, request, queryset, search_term):
        """``search_fields``' keys, each through its own index (``returns_matching``)."""
        if not search_term.strip():
            return queryset, False
        return returns_matching(queryset, query=search_term), False

    def export_rows(self, queryset):
        return return_export_rows(queryset)

    def get_urls(self):
        return [
            path(
                "find/",
                self.admin_site.admin_view(lambda r: admin_views.find_view(self, r)),
                name="returns_find",
            ),
            *super().get_urls(),
        ]

    def has_reject_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("returns.reject_returnrequest")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("returns.retry_returnrequest")

    @admin.action(description=_("Reject with the reason given"), permissions=["reject"])
    def reject(self, request: admin_views.StaffRequest, queryset: QuerySet[ReturnRequest]) -> None:
        choice = request.POST.get("rejection_choice", "")
        params = {
            "reason": request.POST.get("reason", ""),
            "rejection_choice_id": int(choice) if choice.isdigit() else None,
        }
        results = bulk_action_rows(self, request, queryset, kind=RETURNS_REJECT, params=params)
        if results is None:  # in the background, or refused as a whole (the message says)
            return
        self._row_errors(request, results)
        done = sum(result.outcome == REJECTED for result in results)
        if done:
            self.message_user(
                request,
                ngettext("%(count)d return rejected.", "%(count)d returns rejected.", done)
                % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Retry failed returns"), permissions=["retry"])
    def retry(self, request: admin_views.StaffRequest, queryset: QuerySet[ReturnRequest]) -> None:
        results = bulk_action_rows(self, request, queryset, kind=RETURNS_RETRY)
        if results is None:
            return
        self._row_errors(request, results)
        for result in results:
            if result.outcome == PROCESSING_AGAIN:
                self.message_user(
                    request,
                    _("Return #%(id)s is being processed again.") % {"id": result.object_id},
                    messages.SUCCESS,
                )

    def _row_errors(self, request: HttpRequest, results: list[RowResult]) -> None:
        for result in results:
            if result.error:
                self.message_user(
                    request,
                    _("Return #%(id)s: %(error)s")
                    % {"id": result.object_id, "error": result.error},
                    messages.ERROR,
                )


@admin.register(MailReceipt)
class MailReceiptAdmin(ReadOnlyAdmin):
    list_display = [
        "invoice",
        "received_at",
        "received_by",
        "courier",
        "tracking_number",
        "invoice_form_present",
        "deduction_form_present",
        "undamaged",
    ]
    list_select_related = ["invoice", "received_by"]
    search_fields = ["invoice__number", "invoice__code", "tracking_number"]
    date_hierarchy = "received_at"

    def get_urls(self):
        return [
            path(
                "log/",
                self.admin_site.admin_view(lambda r: admin_postroom.mail_receipt_log_view(self, r)),
                name="returns_mailreceipt_log",
            ),
            path(
                "unmatched/",
                self.admin_site.admin_view(
                    lambda r: admin_postroom.mail_receipt_unmatched_view(self, r)
                ),
                name="returns_mailreceipt_unmatched",
            ),
            path(
                "unmatched/<int:receipt_id>/match/",
                self.admin_site.admin_view(
                    lambda r, receipt_id: admin_postroom.mail_receipt_match_view(
                        self, r, receipt_id
                    )
                ),
                name="returns_mailreceipt_match",
            ),
            path(
                "unmatched/<int:receipt_id>/send-back/",
                self.admin_site.admin_view(
                    lambda r, receipt_id: admin_postroom.mail_receipt_send_back_view(
                        self, r, receipt_id
                    )
                ),
                name="returns_mailreceipt_send_back",
            ),
            *super().get_urls(),
        ]


@admin.register(RedLetterForm)
class RedLetterFormAdmin(ReadOnlyAdmin):
    """The review queue: oldest first; each row opens the review page."""

    list_display = [
        "review_link",
        "return_request",
        "customer",
        "invoice_code_and_number",
        "content_type",
        "review_state",
        "created_at",
        "days_waiting",
    ]
    list_display_links = None
    list_filter = ["review_state"]
    list_select_related = ["return_request__invoice__customer"]
    ordering = ["id"]  # oldest first (LargeListAdmin: the primary key's order)

    @admin.display(description=_("form number"), ordering="form_number")
    def review_link(self, obj: RedLetterForm) -> str:
        url = reverse("admin:returns_redletterform_review", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.form_number)

    @admin.display(description=_("customer"))
    def customer(self, obj: RedLetterForm) -> str:
        return obj.return_request.invoice.customer.name

    @admin.display(description=_("days waiting"), ordering="created_at")
    def days_waiting(self, obj: RedLetterForm) -> int | None:
        """How long a form has waited for review (empty once reviewed)."""
        return age_in_days(obj.created_at) if obj.review_state == "pending" else None

    @admin.display(description=_("invoice code and number"))
    def invoice_code_and_number(self, obj: RedLetterForm) -> str:
        return str(obj.return_request.invoice)

    def get_urls(self):
        return [
            path(
                "<int:form_id>/review/",
                self.admin_site.admin_view(
                    lambda r, form_id: admin_views.red_letter_form_review_view(self, r, form_id)
                ),
                name="returns_redletterform_review",
            ),
            path(
                "<int:form_id>/scan/",
                self.admin_site.admin_view(
                    lambda r, form_id: admin_views.red_letter_form_scan_view(self, r, form_id)
                ),
                name="returns_redletterform_scan",
            ),
            *super().get_urls(),
        ]


@admin.register(ReturnEvent)
class ReturnEventAdmin(ReadOnlyAdmin):
    """The whole audit trail (R11), searchable across returns; each return shows its own inline."""

    list_display = [
        "created_at",
        "return_request",
        "from_state",
        "to_state",
        "actor_kind",
        "actor",
        "why",
    ]
    list_filter = ["to_state", "actor_kind"]
    search_fields = ["return_request__invoice__number", "note", "actor__username"]
    list_select_related = ["return_request", "actor"]
    date_hierarchy = "created_at"
    ordering = ["id"]  # oldest first (LargeListAdmin: the primary key's order)

    @admin.display(description=_("why"))
    def why(self, event: ReturnEvent) -> str:
        return event.text  # in the staff user's language


class EnvelopeReturnInline(ReadOnlyInline):
    model = ReturnRequest
    fields = readonly_fields = ("invoice", "state", "created_at")
    show_change_link = True


@admin.register(ReturnEnvelope)
class ReturnEnvelopeAdmin(ReadOnlyAdmin):
    """Several paper invoices a customer mailed back in one envelope; each has its return."""

    list_display = ["id", "customer", "courier", "tracking_number", "created_at"]
    search_fields = ["tracking_number", "customer__name", "customer__taxpayer_id"]
    list_select_related = ["customer"]
    date_hierarchy = "created_at"
    ordering = ["-id"]  # newest first (LargeListAdmin: the primary key's order)
    inlines = [EnvelopeReturnInline]


def _return_id(tax_request: TaxRequest) -> int | None:
    """The return waiting on this request, annotated by ``TaxRequestAdmin.get_queryset``."""
    return_id: int | None = getattr(tax_request, "return_id", None)
    return return_id


class TaxQueueStateFilter(admin.SimpleListFilter):
    """The request's state, where "To do in the tax system" (the admin index's link, and the
    pending state's own name) also holds the red-letter confirmation forms whose 72 hours are
    over: those wait on finance too (check the platform, record what became of the form)."""

    title = _("state")
    parameter_name = "state__exact"

    def lookups(self, request, model_admin):
        return TaxRequestState.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == TaxRequestState.PENDING:
            return tax_requests_to_do(queryset, now=timezone.now())
        if value in TaxRequestState.values:
            return queryset.filter(state=value)
        return queryset


@admin.register(TaxRequest)
class TaxRequestAdmin(ReadOnlyAdmin):
    """The queue "To do in the tax system" (manual backend): oldest first, each row holding
    everything finance needs to act in the tax system, and a link to the page for the next
    step: "Record outcome", or for a booked digital invoice "Record the confirmation form".
    Red-letter confirmation forms whose 72 hours are over come first, flagged.
    Facts share a cell where they belong together, so that a row fits a laptop's screen."""

    list_display = [
        "requested",
        "to_do",
        "original_invoice",
        "buyer",
        "figures",
        "red_letter_form",
        "state",
    ]
    list_display_links = None
    list_filter = [TaxQueueStateFilter, "medium", "operation"]
    search_fields = [
        "serial",
        "invoice__number",
        "invoice__title",
        "invoice__customer__name",
        "invoice__customer__taxpayer_id",
        "red_letter_form_number",
    ]
    list_select_related = ["invoice__customer"]
    ordering = ["created_at", "id"]
    list_per_page = 50

    def get_queryset(self, request):
        return tax_requests_for_queue(super().get_queryset(request), now=timezone.now())

    def get_ordering(self, request):
        # In the queues that hold them ("To do in the tax system", the forms awaiting the
        # buyer), confirmation forms whose 72 hours are over first, then the oldest. The whole
        # history (every return's request) is read oldest first off the primary key
        # (LargeListAdmin): an order computed row by row would sort all of it on every page.
        if request.GET.get("state__exact") in (
            TaxRequestState.PENDING,
            TaxRequestState.AWAITING_BUYER,
        ):
            return [tax_requests_lapsed_first(now=timezone.now()), *self.ordering]
        return ["id"]

    def get_list_display(self, request):
        columns = list(self.list_display)
        if "state__exact" in request.GET:
            columns.remove("state")  # one state: the title says it
        can_record = request.user.has_perm("invoices.record_taxrequest")
        can_correct = request.user.has_perm("invoices.correct_taxrequest")
        if can_record or can_correct:
            columns.append(self._action_column(can_record=can_record, can_correct=can_correct))
        return columns

    def changelist_view(self, request, extra_context=None):
        context: dict[str, object] = {"is_nav_sidebar_enabled": False}  # the queue needs width
        state = request.GET.get("state__exact")
        if state == TaxRequestState.PENDING:
            context["title"] = gettext("To do in the tax system")
        elif state == TaxRequestState.AWAITING_BUYER:
            context["title"] = gettext("Red-letter confirmation forms awaiting the buyer")
        return super().changelist_view(request, {**context, **(extra_context or {})})

    @admin.display(description=_("request"), ordering="created_at")
    def requested(self, obj: TaxRequest) -> str:
        facts = admin_views.tax_request_facts(obj)
        return_id = _return_id(obj)
        if return_id is None:
            return_link = ""
        else:
            return_link = format_html(
                '<br><a href="{}">{}</a>',
                reverse("admin:returns_returnrequest_change", args=[return_id]),
                gettext("Return #%(id)s") % {"id": return_id},
            )
        overdue = (
            format_html(
                '<br><strong class="lapsed overdue">{}</strong>',
                gettext("Overdue: more than 3 working days"),
            )
            if tax_request_is_overdue(obj, now=timezone.now())
            else ""
        )
        return format_html(
            '<a class="nowrap" href="{}">{}</a><br><span class="nowrap">{}</span>'
            '<br><span class="quiet">{}</span>{}{}',
            reverse("admin:invoices_taxrequest_change", args=[obj.pk]),
            obj.serial,
            facts.requested_at,
            facts.age,
            overdue,
            return_link,
        )

    @admin.display(description=_("to do"), ordering="operation")
    def to_do(self, obj: TaxRequest) -> str:
        facts = admin_views.tax_request_facts(obj)
        heading = format_html(
            "<strong>{}</strong><br>{}", obj.get_operation_display(), obj.get_reason_code_display()
        )
        if not facts.to_do_note:
            return heading
        lapsed = facts.next_step == admin_views.NextStep.CHECK_LAPSED_FORM
        return format_html(
            '{}<br><span class="{}">{}</span>',
            heading,
            "lapsed" if lapsed else "next-step",
            facts.to_do_note,
        )

    @admin.display(description=_("original invoice"), ordering="invoice__issued_at")
    def original_invoice(self, obj: TaxRequest) -> str:
        facts = admin_views.tax_request_facts(obj)
        original = facts.submission.original
        kind = facts.kind if obj.is_digital else obj.invoice.get_invoice_type_display()
        return format_html(
            '<span class="nowrap">{}</span><br>{}<br><span class="nowrap">{}</span>',
            facts.original_number,
            kind,
            gettext("issued on %(date)s") % {"date": original.issued_on.isoformat()},
        )

    @admin.display(description=_("buyer and taxpayer ID"), ordering="invoice__title")
    def buyer(self, obj: TaxRequest) -> str:
        original = admin_views.tax_request_facts(obj).submission.original
        return format_html(
            '{}<br><span class="nowrap">{}</span>',
            original.buyer_name,
            original.buyer_taxpayer_id or "—",
        )

    @admin.display(description=_("amounts"))
    def figures(self, obj: TaxRequest) -> str:
        original = admin_views.tax_request_facts(obj).submission.original
        return format_html(
            '<dl class="figures"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>'
            "<dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>",
            gettext("Amount"),
            original.amount,
            gettext("Tax rate"),
            rate_as_printed(original.tax_rate),
            gettext("Tax"),
            original.tax,
            gettext("Total"),
            original.total,
        )

    @admin.display(description=_("red-letter information or confirmation form"))
    def red_letter_form(self, obj: TaxRequest) -> str:
        return admin_views.tax_request_facts(obj).form_note

    @staticmethod
    def _action_column(*, can_record: bool, can_correct: bool) -> Callable[[TaxRequest], str]:
        """This user's action on a row: the page of the request's next step (finance):
        "Record outcome", or "Record the confirmation form" for a booked digital invoice;
        "Correct the outcome" on a recorded one (reviewers)."""

        @admin.display(description=_("record"))
        def record_link(obj: TaxRequest) -> str:
            step = admin_views.tax_request_facts(obj).next_step
            if can_record and step == admin_views.NextStep.ENTER_CONFIRMATION_FORM:
                url = reverse("admin:invoices_taxrequest_confirmation_form", args=[obj.pk])
                label = gettext("Record the confirmation form")
                return format_html('<a class="button" href="{}">{}</a>', url, label)
            if can_record and step != admin_views.NextStep.NOTHING:
                url = reverse("admin:invoices_taxrequest_record", args=[obj.pk])
                label = gettext("Record outcome")
                return format_html('<a class="button" href="{}">{}</a>', url, label)
            if can_correct and tax_request_outcome_can_be_corrected(obj) and _return_id(obj):
                url = reverse("admin:invoices_taxrequest_correct", args=[obj.pk])
                return format_html('<a href="{}">{}</a>', url, gettext("Correct the outcome"))
            return ""

        return record_link

    def get_urls(self):
        return [
            path(
                "<int:tax_request_id>/record/",
                self.admin_site.admin_view(
                    lambda r, tax_request_id: admin_views.tax_request_record_view(
                        self, r, tax_request_id
                    )
                ),
                name="invoices_taxrequest_record",
            ),
            path(
                "<int:tax_request_id>/confirmation-form/",
                self.admin_site.admin_view(
                    lambda r, tax_request_id: admin_views.tax_request_confirmation_form_view(
                        self, r, tax_request_id
                    )
                ),
                name="invoices_taxrequest_confirmation_form",
            ),
            path(
                "<int:tax_request_id>/correct/",
                self.admin_site.admin_view(
                    lambda r, tax_request_id: admin_views.tax_request_correct_view(
                        self, r, tax_request_id
                    )
                ),
                name="invoices_taxrequest_correct",
            ),
            *super().get_urls(),
        ]


@admin.register(RejectionReason)
class RejectionReasonAdmin(admin.ModelAdmin):
    """The list finance picks rejection reasons from, in both languages. Superusers edit it
    (no role has its permissions); a reason is retired ("offered" off), never deleted, since
    rejected returns keep pointing to it."""

    list_display = ["text_en", "text_zh", "active", "position"]
    list_editable = ["active", "position"]
    list_filter = ["active"]
    fields = ["text_en", "text_zh", "active", "position"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# The customer admin (``invoices``) with the customer page, which shows the returns, receipts
# and SMS that ``invoices`` may not know of: re-registered here, where all of them are known.
admin.site.unregister(Customer)


@admin.register(Customer)
class CustomerBackOfficeAdmin(CustomerAdmin):
    list_display = [*CustomerAdmin.list_display, "page_link"]
    search_fields = ["name__icontains", "taxpayer_id__startswith", "mobile__startswith"]

    @admin.display(description=_("customer page"))
    def page_link(self, obj: Customer) -> str:
        url = reverse("admin:invoices_customer_page", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Open"))

    def get_urls(self):
        return [
            path(
                "<int:customer_id>/page/",
                self.admin_site.admin_view(
                    lambda r, customer_id: admin_views.customer_page_view(self, r, customer_id)
                ),
                name="invoices_customer_page",
            ),
            *super().get_urls(),
        ]
