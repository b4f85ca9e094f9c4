"""The back office's large lists (issue 16, P5).

``{% large_result_list cl %}``: Django's ``{% result_list cl %}`` (the same template, headers
and hidden fields), whose rows a model admin may hand ready (``LargeListAdmin.list_rows``).
Django's ``items_for_result`` works out each cell's field, formatter, classes and link anew for
every row: most of a 50-row page's time.

``{% large_list_pagination cl %}`` and ``{% large_list_search_form cl %}``: Django's pager and
search form for a list past its paginator's limit (``LargeListPaginator.count_is_capped``),
saying "more than 10,000" where Django would write a count nobody made
(``admin/change_list.html`` picks them)."""

from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    pagination,
    result_headers,
    result_hidden_fields,
    result_list,
    search_form,
)
from django.utils.formats import number_format

register = template.Library()


@register.inclusion_tag("admin/change_list_results.html")
def large_result_list(cl: Any) -> dict[str, Any]:
    rows = cl.model_admin.list_rows(cl) if hasattr(cl.model_admin, "list_rows") else None
    if rows is None:
        return result_list(cl)
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        # One item a row: the template writes a row's items one after the other.
        "results": [ResultList(None, [row]) for row in rows],
    }


def _limit(cl: Any) -> str:
    return number_format(cl.paginator.exact_limit, force_grouping=True)


@register.inclusion_tag("admin/large_list/pagination.html")
def large_list_pagination(cl: Any) -> dict[str, Any]:
    return {**pagination(cl), "limit": _limit(cl)}


@register.inclusion_tag("admin/large_list/search_form.html")
def large_list_search_form(cl: Any) -> dict[str, Any]:
    return {**search_form(cl), "limit": _limit(cl)}
