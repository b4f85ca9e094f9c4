"""The back office's read-only base: rows change only through services (actions, pages)."""

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import BaseModelAdmin, IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.forms import BooleanField
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone, translation
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from core.audit.actor import Actor
from core.audit.services import audit_record
from core.bulk import (
    ERROR,
    BulkActionKind,
    RowResult,
    bulk_action_kind,
    bulk_action_run_in_request,
    bulk_action_start,
)
from core.exceptions import DomainError
from core.exports import Column, ExportFormat, export_response
from core.models import BulkAction


class LargeListPaginator(Paginator):
    """A paginator that never counts a large list to its end (issue 16, P5).

    It counts up to ``exact_limit`` rows and no further (``COUNT`` over a ``LIMIT``: a few
    milliseconds whatever the table's size). A list that long or shorter is counted to the row
    and paged as Django pages it. A longer one is paged through its first ``exact_limit`` rows in
    the order chosen, and says that it holds more (``count_is_capped``: the list's templates
    write "More than 10,000 ..."; ``LargeListAdmin`` refuses an action on all of it): a back
    office that closes the month in Excel must never show a figure that nobody counted.
    """

    exact_limit = 10_000
    _capped = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        counted = queryset.order_by()[: self.exact_limit + 1].count()
        self._capped = counted > self.exact_limit
        return min(counted, self.exact_limit)

    @property
    def count_is_capped(self) -> bool:
        """The list holds more rows than ``count``: it was counted up to the limit only."""
        _ = self.count  # the count, once, is what finds out
        return self._capped


class KeysFirstPaginator(LargeListPaginator):
    """A ``LargeListPaginator`` whose page chooses its rows' keys on the list's own table
    first (its filters and its order, without the joins ``select_related`` adds), then reads
    those rows with their joins, in one query: ``WHERE id IN (SELECT id ... ORDER BY ...
    LIMIT 50)``. PostgreSQL sorts above its joins, so a search that 2,000 rows match would
    otherwise join all 2,000 with their related rows before keeping 50 (issue 16, P5: the
    returns that share one paper invoice number). A distinct list pages as Django does.

    ``keys_once``: for a list whose filter costs more than reading its keys (a search, whose
    matches are worked out in the query: ``returns.backoffice_selectors.returns_matching``),
    the keys are read once, in the list's order and up to ``exact_limit`` + 1: their number is
    the count, and a page reads its rows by the keys it slices off them, so the filter runs in
    one query where the count and the page each ran it (issue 16, P5)."""

    def __init__(self, *args: Any, keys_once: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys_once = keys_once

    def _by_keys(self) -> QuerySet | None:
        """The list, if its pages may be read by their keys (``None``: paged as Django does)."""
        queryset = self.object_list
        if not isinstance(queryset, QuerySet) or queryset.query.distinct:
            return None
        if not connections[queryset.db].features.allow_sliced_subqueries_with_in:
            return None
        return queryset

    @cached_property
    def _keys(self) -> list[Any]:
        """The list's keys in its order, up to one past ``exact_limit`` (read only where
        ``_by_keys`` gives the list)."""
        queryset = cast(QuerySet, self.object_list)
        return list(queryset.values_list("pk", flat=True)[: self.exact_limit + 1])

    @cached_property
    def count(self) -> int:
        if not (self.keys_once and self._by_keys() is not None):
            return super().count
        self._capped = len(self._keys) > self.exact_limit
        return min(len(self._keys), self.exact_limit)

    def page(self, number: Any) -> Page:
        queryset = self._by_keys()
        if queryset is None:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = self._keys[bottom:top] if self.keys_once else queryset.values("pk")[bottom:top]
        rows = queryset.model._default_manager.db_manager(queryset.db).filter(pk__in=keys)
        rows.query.select_related = queryset.query.select_related
        if queryset.query.order_by:
            rows = rows.order_by(*queryset.query.order_by)
        rows = rows.prefetch_related(*getattr(queryset, "_prefetch_related_lookups", ()))
        return Page(rows, number, self)


class LargeListChangeList(ChangeList):
    """Django's change list, whose rows link to their pages with the list's filters and search
    (``?_changelist_filters=...``, so "Save" and the breadcrumbs come back to them) worked out
    once a page: Django's ``add_preserved_filters`` resolves each row's URL again to see which
    page it is, 50 URL resolutions on any searched or filtered page (issue 16, P5)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.row_filters, self.preserved_filters = self.preserved_filters, ""

    def url_for_result(self, result: Any) -> str:
        url = super().url_for_result(result)
        return f"{url}?{self.row_filters}" if self.row_filters else url


class PermittedLinksAdmin(BaseModelAdmin):
    """A model admin (or inline) whose read-only foreign keys link to the related object's
    page only for staff who may open it, and are plain text for the others: Django links every
    read-only foreign key to its object's page whoever looks, so a reviewer on an invoice's page
    was offered its application, and finance on a return's page the customer's user account,
    each answering 403 (``tests/test_admin_links.py`` follows every link each role is shown)."""

    def _unlinked(self, request: HttpRequest, obj: Any) -> dict[str, str]:
        """The read-only foreign keys of this page whose objects the user may not open, each
        with the name of a display of the object as text."""
        editable = self.has_change_permission(request, obj)
        unlinked = {}
        for field in self.opts.concrete_fields:
            if not (field.many_to_one or field.one_to_one) or field.related_model is None:
                continue
            if editable and field.name not in self.readonly_fields:
                continue  # a form field, not a link
            related = self.admin_site._registry.get(field.related_model)
            if related is None or not related.has_view_permission(request):
                unlinked[field.name] = self._as_text(field.name, field.verbose_name)
        return unlinked

    def _as_text(self, name: str, label: Any) -> str:
        """The name of a display of the field ``name`` as text (Django looks a read-only
        field's name up on the admin: ``<name>_as_text``)."""
        display_name = f"{name}_as_text"
        if display_name not in self.__dict__:

            @admin.display(description=label)
            def display(obj: Any) -> Any:
                return getattr(obj, name)

            setattr(self, display_name, display)
        return display_name

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        unlinked = self._unlinked(request, obj)
        shown = set(unlinked.values())
        return [
            unlinked.get(name, name) if isinstance(name, str) else name
            for name in super().get_fields(request, obj)
            if name not in shown
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [*super().get_readonly_fields(request, obj), *self._unlinked(request, obj).values()]


class LargeListAdmin(PermittedLinksAdmin, admin.ModelAdmin):
    """A back-office list over a table that grows without bound: no full ``COUNT`` on any page
    (``LargeListPaginator``), and no second count of the unfiltered table beside a filtered
    one (the list says "Show all" instead of "(200,000 total)").

    Its first page in its default order is read off an index, never a sort of the table
    (``tests/test_backoffice_lists.py`` reads each list's plan). A list of rows stamped when
    they are written (``created_at``) is ordered by ``id``, the primary key's order and the
    order they were written in, rather than given an index of its own that every insert on a
    hot path (each event, SMS, tax request) would have to write."""

    paginator = LargeListPaginator
    show_full_result_count = False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return LargeListChangeList

    def response_action(
        self, request: HttpRequest, queryset: QuerySet, *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        """Django's, except that an action on all of a list past its paginator's limit is
        refused: nobody counted those rows or saw them, and the page would not say how many
        were changed (the templates offer no "Select all" there; this holds a stale or hand-made
        form to the same rule). Selected rows, and all of a counted list, go through."""
        across = BooleanField(required=False).clean(request.POST.get("select_across"))
        paginator = self.get_paginator(request, queryset, self.list_per_page)
        if across and isinstance(paginator, LargeListPaginator) and paginator.count_is_capped:
            self.message_user(
                request,
                gettext(
                    "This list holds more than %(count)s %(name)s: narrow it with the search "
                    "or the filters before acting on all of it, or select rows on the page."
                )
                % {
                    "count": number_format(paginator.exact_limit, force_grouping=True),
                    "name": self.opts.verbose_name_plural,
                },
                messages.WARNING,
            )
            return None
        return super().response_action(request, queryset, *args, **kwargs)

    @admin.display(description=mark_safe('<input type="checkbox" id="action-toggle">'))
    def action_checkbox(self, obj: Any) -> SafeString:
        """Django's own checkbox, written out (the same HTML, a test compares them): the form
        widget it renders through the template engine cost more than the rest of its row."""
        label = f"{format_html(gettext('Select this object for an action - {}'), str(obj))}"
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            label,
        )


class ReadOnlyAdmin(LargeListAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(PermittedLinksAdmin, admin.TabularInline):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ExportMixin(admin.ModelAdmin):
    """The list as Excel (.xlsx) or CSV, with the filters, search and order of the page it
    was asked from (``export.xlsx?<the list's query>``). Needs the view permission. A model
    admin says what to write: ``export_columns``, ``export_rows`` and ``export_name``; the
    change list shows the two links (``admin/export_change_list.html``)."""

    change_list_template = "admin/export_change_list.html"
    export_columns: Sequence[Column] = ()
    export_name = "export"

    def export_rows(self, queryset: QuerySet) -> Iterable[Sequence[Any]]:
        raise NotImplementedError

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                f"export.{export_format}",
                self.admin_site.admin_view(partial(self.export_view, export_format=export_format)),
                name="{}_{}_export_{}".format(*info, export_format),
            )
            for export_format in ExportFormat
        ] + super().get_urls()

    def export_view(
        self, request: HttpRequest, export_format: ExportFormat
    ) -> FileResponse | StreamingHttpResponse | HttpResponseRedirect:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect("../?e=1")
        queryset = changelist.get_queryset(request)
        # Who took which rows out of the back office, with the filters they used.
        audit_record(
            actor=Actor.staff(request.user),
            action="export.downloaded",
            object_type=self.opts.label_lower,
            object_id="*",
            params={
                "list": self.opts.label_lower,
                "format": str(export_format),
                "query": request.GET.urlencode() or "-",
            },
        )
        stamp = timezone.localtime(timezone.now(), ZoneInfo(settings.BUSINESS_TIME_ZONE))
        return export_response(
            export_format,
            filename=f"{self.export_name}-{stamp:%Y%m%d-%H%M}",
            sheet_title=str(self.opts.verbose_name_plural),
            columns=self.export_columns,
            rows=self.export_rows(queryset),
            tz=ZoneInfo(settings.BUSINESS_TIME_ZONE),
        )


def bulk_action_rows(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    kind: BulkActionKind,
    params: Mapping[str, Any] | None = None,
) -> list[RowResult] | None:
    """Do an admin action on the rows chosen (``core.bulk``): up to the kind's
    ``in_request_limit`` now, each row in its own transaction, giving each row's result for the
    action's messages; more in the background, saying so with a link to its progress (None)."""
    params = dict(params or {})
    object_ids = list(queryset.order_by("pk").values_list("pk", flat=True))
    if len(object_ids) <= kind.in_request_limit:
        return bulk_action_run_in_request(
            kind=kind, object_ids=object_ids, actor=Actor.staff(request.user), params=params
        )
    if kind.check is not None:
        try:
            kind.check(params)
        except DomainError as exc:
            model_admin.message_user(request, str(exc), messages.ERROR)
            return None
    action = bulk_action_start(
        kind=kind,
        object_ids=object_ids,
        user=request.user,  # type: ignore[arg-type]
        params=params,
        language=translation.get_language() or settings.LANGUAGE_CODE,
    )
    model_admin.message_user(
        request,
        format_html(
            gettext(
                "{action}: {count} {items} are being done in the background, each in a "
                'transaction of its own. <a href="{url}">Follow its progress</a>.'
            ),
            action=kind.description,
            count=number_format(len(object_ids), force_grouping=True),
            items=kind.items or model_admin.opts.verbose_name_plural,
            url=reverse("admin:core_bulkaction_change", args=[action.pk]),
        ),
        messages.SUCCESS,
    )
    return None


@admin.register(BulkAction)
class BulkActionAdmin(ReadOnlyAdmin):
    """The back-office actions done in the background, with their progress and what came of
    each row. Staff see the ones they asked for (a superuser sees all); what each row's action
    did is also in the audit log, under the staff member's name."""

    list_display = ["id", "action", "requested_by", "created_at", "progress", "summary"]
    list_display_links = ["id", "action"]
    list_select_related = ["requested_by"]
    ordering = ["-id"]  # newest first (LargeListAdmin: the primary key's order)
    fields = (
        "action",
        "requested_by",  # a link for those who may open user accounts (PermittedLinksAdmin)
        "created_at",
        "progress",
        "summary",
        "reason",
        "refusals",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request).defer("object_ids")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(requested_by=request.user.pk)

    # Any staff member may follow the actions they asked for: the rows are their own.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    @admin.display(description=_("action"))
    def action(self, obj: BulkAction) -> str:
        return str(bulk_action_kind(obj.kind).description)

    @admin.display(description=_("progress"))
    def progress(self, obj: BulkAction) -> str:
        done = gettext("%(done)s of %(total)s") % {
            "done": number_format(obj.position, force_grouping=True),
            "total": number_format(obj.total, force_grouping=True),
        }
        if obj.finished_at is None:
            return gettext("%(done)s, going on") % {"done": done}
        return gettext("%(done)s, finished %(at)s") % {
            "done": done,
            "at": formats.localize(timezone.localtime(obj.finished_at)),
        }

    @admin.display(description=_("outcome"))
    def summary(self, obj: BulkAction) -> str:
        labels = {**bulk_action_kind(obj.kind).outcomes, ERROR: _("refused")}
        return pgettext("between the outcomes of a bulk action", "; ").join(
            gettext("%(outcome)s: %(count)s")
            % {
                "outcome": labels.get(outcome, outcome),
                "count": number_format(count, force_grouping=True),
            }
            for outcome, count in obj.outcomes.items()
        )

    @admin.display(description=_("reason given"))
    def reason(self, obj: BulkAction) -> str:
        return obj.params.get("reason") or "—"

    @admin.display(description=_("rows refused"))
    def refusals(self, obj: BulkAction) -> SafeString | str:
        if not obj.errors:
            return "—"
        lines = format_html_join(
            SafeString("<br>"), "#{}: {}", ((e["id"], e["error"]) for e in obj.errors)
        )
        refused = obj.outcomes.get(ERROR, 0)
        if refused > len(obj.errors):
            more = gettext("and %(count)s more, not kept") % {
                "count": number_format(refused - len(obj.errors), force_grouping=True)
            }
            return format_html("{}<br>{}", lines, more)
        return lines
