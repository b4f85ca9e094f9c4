"""The admin index's post-room figure: how much paper waits in the unmatched paper queue."""

from django import template

from returns.selectors import mail_receipts_unmatched_count

register = template.Library()


@register.simple_tag
def unmatched_paper_count() -> int:
    return mail_receipts_unmatched_count()
