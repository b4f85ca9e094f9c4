"""``{% large_result_list cl %}``: Django's ``{% result_list cl %}`` (the same template, headers
and hidden fields), whose rows a model admin may hand ready (``LargeListAdmin.list_rows``:
issue 16, P5). Django's ``items_for_result`` works out each cell's field, formatter, classes
and link anew for every row: most of a 50-row page's time."""

from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    result_headers,
    result_hidden_fields,
    result_list,
)

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
