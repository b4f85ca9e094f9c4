"""The admin index's overview: figures from a selector, the ageing chart as inline SVG."""

from django import template

from returns.backoffice_selectors import money_overview, tax_requests_overdue
from returns.selectors import back_office_overview

register = template.Library()

CHART_BAR_MAX = 160  # px, the longest bar


@register.simple_tag
def back_office_overview_data():
    overview = back_office_overview()
    top = max((count for _label, count in overview.ageing), default=0) or 1
    bars = [
        {
            "label": label,
            "count": count,
            "width": round(CHART_BAR_MAX * count / top),
            "y": 8 + index * 28,
        }
        for index, (label, count) in enumerate(overview.ageing)
    ]
    return {
        "overview": overview,
        "ageing_bars": bars,
        "money": money_overview(),
        "tax_tasks_overdue": tax_requests_overdue().count(),
    }
