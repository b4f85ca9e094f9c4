"""The red-letter information form of a certified special invoice's return (R3, R4):
the customer uploads or replaces it, an admin reviewer approves or rejects it.
"""

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit.actor import Actor
from core.audit.services import audit_record
from invoices.taxsystem.services import is_form_number
from returns.exceptions import InvalidReturnReason, InvalidUpload, ReturnStateConflict
from returns.models import FormReviewState, RedLetterForm, ReturnRequest, ReturnState
from returns.rules import (
    red_letter_form_can_be_replaced,
    red_letter_form_can_be_reviewed,
    return_is_before_processing,
    return_needs_red_letter_form,
)
from returns.selectors import red_letter_form_current
from returns.services._common import (
    REASON_MAX,
    _advance_if_ready,
    _lock_return,
    _notify,
    _reject,
)
from returns.uploads import sniff_red_letter_form


def _check_form_number(form_number: str) -> str:
    form_number = "".join((form_number or "").split())  # as typed: "4403 2626 0001 2345"
    if not form_number:
        raise InvalidUpload(_("Enter the red-letter information form number."))
    if not is_form_number(form_number):
        raise InvalidUpload(
            _("The red-letter information form number is the 16 digits the tax system gave.")
        )
    return form_number


def _form_create(
    rr: ReturnRequest, *, upload: UploadedFile, form_number: str, actor: Actor
) -> RedLetterForm:
    sniffed = sniff_red_letter_form(upload, return_request=rr)
    form = RedLetterForm(
        return_request=rr,
        content_type=sniffed.content_type,
        size=sniffed.size,
        sha256=sniffed.sha256,
        form_number=form_number,
        uploaded_by=actor.user,
    )
    # Stored under its content hash: a rolled-back upload leaves at most an orphan file that the
    # same scan would overwrite, never a row pointing at a missing file.
    form.file.save("scan", sniffed.file, save=False)
    form.save()
    return form


def _form_audit(
    rr: ReturnRequest, form: RedLetterForm, *, actor: Actor, action: str, reason: str = ""
) -> None:
    """The audit row of a form uploaded, replaced or reviewed: on the return (its timeline)."""
    audit_record(
        actor=actor,
        action=action,
        obj=rr,
        customer_id=rr.invoice.customer_id,
        params={"form": form.pk, "form_number": form.form_number, "reason": reason},
        reason=reason,
    )


@transaction.atomic
def red_letter_form_upload(
    *, return_request_id: int, actor: Actor, upload: UploadedFile, form_number: str
) -> RedLetterForm:
    """Upload or replace the red-letter form of a certified special invoice's return (R3)."""
    form_number = _check_form_number(form_number)
    rr = _lock_return(return_request_id)
    current = red_letter_form_current(return_request_id=rr.pk)
    if not red_letter_form_can_be_replaced(rr, current):  # R3; say which part failed
        if not return_needs_red_letter_form(rr):
            raise InvalidUpload(_("This return does not need a red-letter information form."))
        if not return_is_before_processing(rr):
            raise ReturnStateConflict(_("The red-letter form can no longer be changed."))
        raise ReturnStateConflict(_("The red-letter form is already approved."))
    if current is not None:
        current.review_state = FormReviewState.REPLACED
        current.save(update_fields=["review_state"])
    form = _form_create(rr, upload=upload, form_number=form_number, actor=actor)
    _form_audit(
        rr,
        form,
        actor=actor,
        action="red_letter_form.replaced" if current is not None else "red_letter_form.uploaded",
    )
    old_name = current.file.name if current is not None else None
    if current is not None and old_name and old_name != form.file.name:
        # The replaced scan leaves the disk once the replacement is committed (its row stays, as
        # the audit of what was uploaded). The same scan again is stored under the same name
        # (its content hash) and is kept.
        storage = current.file.storage
        transaction.on_commit(lambda: storage.delete(old_name))
    return form


@transaction.atomic
def red_letter_form_review(
    *, red_letter_form_id: int, reviewer: Actor, approve: bool, reason: str = ""
) -> RedLetterForm:
    """An admin reviewer approves or rejects a form scan. Approving completes R4 when the
    paper is in; rejecting a form whose paper is in rejects the return (DESIGN.md states).
    Reviewing the same way twice is a no-op."""
    return_request_id = (
        RedLetterForm.objects.filter(pk=red_letter_form_id)
        .values_list("return_request_id", flat=True)
        .get()
    )
    rr = _lock_return(return_request_id)
    form = RedLetterForm.objects.select_for_update().get(pk=red_letter_form_id)
    wanted = FormReviewState.APPROVED if approve else FormReviewState.REJECTED
    if form.review_state == wanted:
        return form
    if not red_letter_form_can_be_reviewed(rr, form):
        if not return_is_before_processing(rr):
            raise ReturnStateConflict(
                _("This return is %(state)s: its form can no longer be reviewed.")
                % {"state": rr.get_state_display().lower()}
            )
        raise ReturnStateConflict(_("This form has already been reviewed or replaced."))
    reason = (reason or "").strip()
    if not approve and not reason:
        raise InvalidReturnReason(_("Say why the form is rejected: the customer will see it."))
    form.review_state = wanted
    form.reviewer = reviewer.user
    form.reviewed_at = timezone.now()
    form.review_reason = reason[:REASON_MAX]
    form.save(update_fields=["review_state", "reviewer", "reviewed_at", "review_reason"])
    _form_audit(
        rr,
        form,
        actor=reviewer,
        action="red_letter_form.approved" if approve else "red_letter_form.rejected",
        reason=form.review_reason,
    )
    if approve:
        _advance_if_ready(rr, actor=reviewer)
    elif rr.state == ReturnState.RECEIVED:
        _reject(
            rr,
            actor=reviewer,
            key="form.rejected",
            params={"reason": reason},
            sms=("return_rejected_form", {"note": reason}),
        )
    else:
        _notify(
            rr,
            template="form_rejected",
            params={"number": rr.invoice.number, "note": reason},
            event=f"return:{rr.pk}:form_rejected:{form.pk}",
        )
    return form
