"""The refund's transaction in raw SQL: lock the customer's invoice, insert the return and its
event (the rows the app writes for a paper return), answer with the redirect the app answers."""

import secrets

from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.utils import timezone

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _reference(now) -> str:
    """A return reference as the app draws one (``returns.references``; the floor imports no
    app): R, the Beijing date, six random characters and a Luhn mod 32 check character."""
    from zoneinfo import ZoneInfo

    from stdnum import luhn

    body = f"{now.astimezone(ZoneInfo('Asia/Shanghai')):%y%m%d}" + "".join(
        secrets.choice(_ALPHABET) for _ in range(6)
    )
    return f"R{body[:6]}-{body[6:]}{luhn.calc_check_digit(body, alphabet=_ALPHABET)}"


def refund(request, customer_id: int, invoice_id: int) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    reason = request.POST.get("reason", "").strip()[:500]
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.medium, c.user_id FROM invoices_invoice AS i "
            "JOIN invoices_customer AS c ON c.id = i.customer_id "
            "WHERE i.id = %s AND i.customer_id = %s AND i.state = 'issued' FOR UPDATE OF i",
            [invoice_id, customer_id],
        )
        row = cursor.fetchone()
        if row is None:
            return HttpResponseNotFound()
        medium, user_id = row
        cursor.execute(
            "INSERT INTO returns_returnrequest (state, problem, reason, certified, courier, "
            "tracking_number, outcome, rejection_reason, error, created_at, updated_at, "
            "invoice_id, submitted_by_id, reason_code, buyer_booked, buyer_form_number, medium, "
            "rejection_note, reference) "
            "VALUES ('submitted', 'other', %s, false, '', '', '', '', '', %s, %s, %s, %s, "
            "'issuing_error', false, '', %s, '', %s) RETURNING id",
            [reason, now, now, invoice_id, user_id, medium, _reference(now)],
        )
        (return_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO returns_returnevent (from_state, to_state, note, created_at, actor_id, "
            "return_request_id) VALUES ('', 'submitted', %s, %s, %s, %s)",
            [reason, now, user_id, return_id],
        )
    return HttpResponseRedirect(f"/billing/returns/{return_id}/")
