"""What one row of each returns action does when it runs in the background (``core.bulk``)."""

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.audit.actor import Actor
from core.bulk import BulkActionKind, bulk_action_kind_register
from returns.services import return_rejection_check, return_request_reject, return_request_retry

REJECTED = "rejected"
PROCESSING_AGAIN = "processing_again"


def _reject(return_request_id: int, actor: Actor, params: Mapping[str, Any]) -> str:
    return_request_reject(
        return_request_id=return_request_id,
        actor=actor,
        reason=params.get("reason", ""),
        rejection_choice_id=params.get("rejection_choice_id"),
    )
    return REJECTED


def _check_reason(params: Mapping[str, Any]) -> None:
    return_rejection_check(
        reason=params.get("reason", ""), rejection_choice_id=params.get("rejection_choice_id")
    )


def _retry(return_request_id: int, actor: Actor, params: Mapping[str, Any]) -> str:
    return_request_retry(return_request_id=return_request_id, actor=actor)
    return PROCESSING_AGAIN


# A page of the returns list (50 rows) is done in the request; all of a filtered list of more
# than 100 returns in the background.
RETURNS_REJECT = BulkActionKind(
    name="returns.reject",
    description=_("Reject with the reason given"),
    outcomes={REJECTED: _("rejected")},
    run=_reject,
    check=_check_reason,  # a missing reason is said once, not once a return
    items=pgettext_lazy("rows of a bulk action", "returns"),
)
RETURNS_RETRY = BulkActionKind(
    name="returns.retry",
    description=_("Retry failed returns"),
    outcomes={PROCESSING_AGAIN: _("being processed again")},
    run=_retry,
    items=pgettext_lazy("rows of a bulk action", "returns"),
)


def register() -> None:
    bulk_action_kind_register(RETURNS_REJECT)
    bulk_action_kind_register(RETURNS_RETRY)
